//! Administration pages, for admins: users (`nester user`), probes and their revocation
//! (`nester probe`), enrollment tokens (`nester token`), the audit log (`nester audit`).

pub mod audit;
pub mod bans;
pub mod enrollment;
pub mod probes;
pub mod users;
