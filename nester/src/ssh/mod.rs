//! SSH, as the nester uses it: `host_key.rs`, the pinned host key of a server it logs in to
//! (the backup server); `key_file.rs`, its own Ed25519 keys on disk (the backup key, the SSH
//! CAs of `ssh_ca`).

pub mod host_key;
pub mod key_file;
