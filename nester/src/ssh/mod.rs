//! SSH, as the nester uses it: `host_key.rs`, the pinned host key of a server it logs in to
//! (the backup server).

pub mod host_key;
