//! A real OpenSSH server on loopback with its own host key, set up as an operator would:
//! for backups, one account that may only use `internal-sftp` in a chroot and logs in with a
//! key from an `authorized_keys` file the test writes ([`Sshd::start`]); as a harvester box,
//! an account opened only by user certificates of a trusted CA, a KRL and a principals file
//! ([`Sshd::start_box`]). Its sessions can be cut as a network failure would.
//!
//! Needs root (the chroot, the accounts) and `/usr/sbin/sshd` (installed by `tests/run`).

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The account backups log in as.
pub const USER: &str = "seahawks-backup-test";
/// Where backups go, as the account sees it (inside the chroot).
pub const DIR: &str = "/backups";
/// The account's `authorized_keys`, as its SFTP session sees it (the account may change it:
/// the nester rotates its key there).
pub const AUTHORIZED_KEYS: &str = "/.ssh/authorized_keys";
/// The account support engineers log in to on a harvester box ([`Sshd::start_box`]).
pub const BOX_USER: &str = "seahawks-box-test";

pub struct Sshd {
    child: Child,
    pub port: u16,
    base: PathBuf,
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// An account with no password (but not locked, so sshd lets keys and certificates in).
fn ensure_user(name: &str, shell: &str) {
    static USERS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut made = USERS.lock().unwrap();
    if made.iter().any(|u| u == name) {
        return;
    }
    let known = Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !known {
        run(
            "useradd",
            &[
                "--system",
                "--no-create-home",
                "--home-dir",
                "/",
                "--shell",
                shell,
                name,
            ],
        );
    }
    run("usermod", &["-p", "*", name]);
    made.push(name.to_string());
}

/// A directory of its own for a server: under a root-owned path no one else may write, as
/// a chroot's every component must be (not /tmp).
fn new_base() -> PathBuf {
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "/usr/sbin/sshd is missing: run the suite with tests/run, which installs openssh-server"
    );
    let parent = Path::new("/var/lib/seahawks-tests");
    std::fs::create_dir_all(parent).unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = tempfile::Builder::new()
        .prefix("sshd-")
        .tempdir_in(parent)
        .unwrap()
        .keep();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    base
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// Starts sshd letting in the keys of `authorized_keys` (OpenSSH format, one per line).
    pub fn start(authorized_keys: &str) -> Self {
        ensure_user(USER, "/usr/sbin/nologin");
        let base = new_base();
        let chroot = base.join("chroot");
        std::fs::create_dir(&chroot).unwrap();
        std::fs::set_permissions(&chroot, std::fs::Permissions::from_mode(0o755)).unwrap();
        let backups = chroot.join(DIR.trim_start_matches('/'));
        std::fs::create_dir(&backups).unwrap();
        run("chown", &[USER, backups.to_str().unwrap()]);
        std::fs::set_permissions(&backups, std::fs::Permissions::from_mode(0o700)).unwrap();
        let ssh_dir = chroot.join(".ssh");
        std::fs::create_dir(&ssh_dir).unwrap();
        run("chown", &[USER, ssh_dir.to_str().unwrap()]);
        std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        write_keys(&base, authorized_keys);
        let config = format!(
            "AuthorizedKeysFile {chroot}/.ssh/authorized_keys\nAllowUsers {USER}\n\
             Subsystem sftp internal-sftp\n\
             Match User {USER}\n  ChrootDirectory {chroot}\n  ForceCommand internal-sftp\n  \
             AllowTcpForwarding no\n  X11Forwarding no\n",
            chroot = chroot.display(),
        );
        Self::launch(base, &config)
    }

    /// Starts sshd as a harvester box runs it for support engineers, configured by the
    /// shipped snippet (`deploy/sshd_config.d/seahawks.conf`) with its paths moved into the
    /// box's directory: user certificates signed by the CA in `box_file("trusted_user_ca")`
    /// (`TrustedUserCAKeys`), unless the KRL in `box_file("revoked_keys")` revokes them,
    /// opening account [`BOX_USER`] to the principals listed in `box_file("principals")`; no
    /// passwords, no `authorized_keys`; the host certificate in
    /// `box_file("host_ed25519-cert.pub")` once there is one.
    pub fn start_box(user_ca: &str) -> Self {
        ensure_user(BOX_USER, "/bin/sh");
        let base = new_base();
        let file = |name: &str, text: &[u8]| {
            let path = base.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            path
        };
        let (ca, krl, principals) = (
            file("trusted_user_ca", user_ca.as_bytes()),
            file("revoked_keys", b""),
            file("principals", b""),
        );
        // Absent until a harvester installs it: sshd logs that and serves the plain key.
        let host_cert = base.join("host_ed25519-cert.pub");
        let snippet =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/sshd_config.d/seahawks.conf");
        let snippet = std::fs::read_to_string(snippet)
            .unwrap()
            .replace("/etc/ssh/seahawks/user_ca.pub", ca.to_str().unwrap())
            .replace("/etc/ssh/seahawks/revoked.krl", krl.to_str().unwrap())
            .replace(
                "/etc/ssh/seahawks/ssh_host_ed25519_key-cert.pub",
                host_cert.to_str().unwrap(),
            )
            .replace("/etc/ssh/auth_principals/%u", principals.to_str().unwrap());
        let paths: Vec<&str> = snippet
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains("/etc/"))
            .collect();
        assert!(
            paths.is_empty(),
            "a path of the snippet not moved: {paths:?}"
        );
        Self::launch(base, &format!("{snippet}AllowUsers {BOX_USER}\n"))
    }

    /// Has sshd read its configuration and host keys and certificates again (`SIGHUP`, as
    /// `systemctl reload` does), and waits until it listens again.
    pub fn reload(&self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).expect("a process id is not 0"),
            rustix::process::Signal::HUP,
        )
        .unwrap();
        // It closes its socket and re-executes itself: wait past the close, then for the
        // listen.
        std::thread::sleep(Duration::from_millis(500));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen again within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A file of a box's sshd (see [`Sshd::start_box`]): `trusted_user_ca`, `revoked_keys`,
    /// `principals`, `host_ed25519.pub`, `host_ed25519-cert.pub`.
    pub fn box_file(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// The `known_hosts` line for this server, for `StrictHostKeyChecking=yes`.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key())
    }

    /// Runs sshd in `base` with its own host key, on a free loopback port, with `config`
    /// after the common settings.
    fn launch(base: PathBuf, config: &str) -> Self {
        let host_key = base.join("host_ed25519");
        run(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                host_key.to_str().unwrap(),
            ],
        );
        let port = free_port();
        let path = base.join("sshd_config");
        std::fs::write(
            &path,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile none\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 LogLevel VERBOSE\n{config}",
                key = host_key.display(),
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", path.to_str().unwrap()])
            .stdin(Stdio::null())
            .spawn()
            .expect("sshd starts");
        let sshd = Self { child, port, base };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", sshd.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    /// `host:port` for `[backup] server`.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's process id (its sessions are its children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills every session the server runs (its child processes and theirs), as a network
    /// cut would end them; the server itself goes on listening. Returns how many processes
    /// it killed.
    pub fn cut_sessions(&self) -> usize {
        // The whole tree first: a process killed before its children are found leaves them
        // to init, out of reach (a session's monitor and its unprivileged child).
        let mut tree = Vec::new();
        let mut parents = vec![self.child.id()];
        while let Some(parent) = parents.pop() {
            for child in children(parent) {
                tree.push(child);
                parents.push(child);
            }
        }
        for pid in &tree {
            // Gone already is as good as killed.
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(*pid as i32).expect("a process id is not 0"),
                rustix::process::Signal::KILL,
            );
        }
        tree.len()
    }

    /// The host's public key, `ssh-ed25519 AAAA...`, to pin.
    /// `[backup]` pointing at this server, its host key pinned, with the shipped defaults.
    pub fn backup_config(&self) -> nester::config::BackupConfig {
        nester::config::BackupConfig {
            server: self.server(),
            user: USER.into(),
            dir: DIR.into(),
            host_key: self.host_key().parse().unwrap(),
            every: Duration::from_secs(86_400),
            keep_last: 7,
            keep_daily: 14,
            keep_weekly: 8,
            authorized_keys: Some(AUTHORIZED_KEYS.into()),
            key_rotation: Duration::from_secs(90 * 86_400),
            verify: true,
        }
    }

    pub fn host_key(&self) -> String {
        std::fs::read_to_string(self.base.join("host_ed25519.pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Where the account's backups are, seen from outside the chroot.
    pub fn backups(&self) -> PathBuf {
        self.base.join("chroot").join(DIR.trim_start_matches('/'))
    }

    pub fn set_authorized_keys(&self, keys: &str) {
        write_keys(&self.base, keys);
    }

    /// The account's `authorized_keys` as it is now.
    pub fn authorized_keys(&self) -> String {
        std::fs::read_to_string(keys_file(&self.base)).unwrap_or_default()
    }
}

/// The processes whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // `pid (comm) state ppid ...`: the command may hold spaces and parentheses.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = stat.rsplit_once(')')?.1.to_string();
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

fn keys_file(base: &Path) -> PathBuf {
    base.join("chroot")
        .join(AUTHORIZED_KEYS.trim_start_matches('/'))
}

/// Written as the account's own file (it may rewrite it).
fn write_keys(base: &Path, keys: &str) {
    let path = keys_file(base);
    std::fs::write(&path, keys).unwrap();
    run("chown", &[USER, path.to_str().unwrap()]);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
