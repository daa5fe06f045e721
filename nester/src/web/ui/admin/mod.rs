//! Administration pages, for admins: users (`nester user`), probes and their revocation
//! (`nester probe`), enrollment tokens (`nester token`), the audit log (`nester audit`), bans
//! (`nester ban`), backups (`nester backup`).

pub mod audit;
pub mod backups;
pub mod bans;
pub mod enrollment;
pub mod probes;
pub mod users;
