//! The real binaries as child processes. They must be built first
//! (`cargo build --workspace --bins`; `tests/run` does it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join(name);
    let built = std::fs::metadata(&path).and_then(|m| m.modified());
    let Ok(built) = built else {
        panic!(
            "{} is missing: run `cargo build --workspace --bins` first (tests/run does)",
            path.display()
        );
    };
    // A binary older than the code it is built from would test yesterday's program.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sources: &[&str] = match name {
        "nester" => &["nester/src", "harvester/src", "shared/src", "dashboard"],
        "harvester" => &["harvester/src", "shared/src"],
        _ => &["tests/support"],
    };
    for dir in sources {
        if let Some((source, changed)) = newest(&workspace.join(dir))
            && changed > built
        {
            panic!(
                "{} is older than {}: run `cargo build --workspace --bins` first (tests/run does)",
                path.display(),
                source.display()
            );
        }
    }
    path
}

/// The most recently modified file under `dir`.
fn newest(dir: &Path) -> Option<(PathBuf, std::time::SystemTime)> {
    let mut found_newest: Option<(PathBuf, std::time::SystemTime)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let found = if path.is_dir() {
            newest(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (path, t))
        };
        if let Some((p, t)) = found
            && found_newest.as_ref().is_none_or(|(_, n)| t > *n)
        {
            found_newest = Some((p, t));
        }
    }
    found_newest
}

pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A child process killed on drop, whose stdout lines arrive on a channel, and its log
/// lines (stderr) on another, each also passed on to the test's own stderr.
pub struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    logs: mpsc::Receiver<String>,
}

impl Daemon {
    pub fn spawn(name: &str, args: &[&str]) -> Self {
        let mut child = Command::new(binary(name))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let _ = tx.send(line);
            }
        });
        Self { child, lines, logs }
    }

    /// The warnings and errors logged so far.
    pub fn warnings(&self) -> Vec<String> {
        self.logs
            .try_iter()
            .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
            .collect()
    }

    /// The value of the next `key: value` line, waiting at most 30 s.
    pub fn field(&self, key: &str) -> String {
        let prefix = format!("{key}: ");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("no `{key}:` line within 30 s"),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("exited before printing `{key}:`")
                }
            };
            if let Some(value) = line.strip_prefix(&prefix) {
                return value.to_string();
            }
        }
    }

    /// Sends `signal` and waits (at most 20 s) for a clean exit.
    pub fn stop(mut self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exited with {status} after {signal}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("still running 20 s after {signal}");
    }
}

impl Daemon {
    /// SIGKILL: no cleanup, no flush, like a power cut for the process.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A nester's files for its real binary: a data directory made by `nester init`, and a
/// config with both listeners on fixed loopback ports, so a restarted nester is found again.
pub struct NesterFiles {
    pub data: PathBuf,
    pub config: PathBuf,
    pub ingest: std::net::SocketAddr,
}

impl NesterFiles {
    pub fn new(dir: &Path) -> Self {
        let data = dir.join("nester");
        let init = run("nester", &["init", "--data-dir", data.to_str().unwrap()]);
        assert!(init.status.success(), "{}", stderr(&init));
        // Free now; a port number, since the nester binds it itself.
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        };
        let (ingest, web) = (free(), free());
        let config = dir.join("nester.toml");
        let text = format!(
            "data_dir = {:?}\n[ingest]\nlisten = \"{ingest}\"\n[web]\nlisten = \"{web}\"\n",
            data.to_str().unwrap()
        );
        std::fs::write(&config, text).unwrap();
        Self {
            data,
            config,
            ingest,
        }
    }

    pub fn config_arg(&self) -> &str {
        self.config.to_str().unwrap()
    }

    /// `nester ARGS --config CONFIG`: whether it succeeded, and what it printed (both
    /// streams).
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--config", self.config_arg()]);
        let out = run("nester", &all);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Enrolls a harvester into `state` with a token from `nester token create`.
    pub async fn enroll(&self, state: &Path) {
        let args = [
            "token",
            "create",
            "--config",
            self.config_arg(),
            "--site",
            "s",
        ];
        let out = run("nester", &args);
        assert!(out.status.success(), "{}", stderr(&out));
        harvester::enroll::enroll(&String::from_utf8(out.stdout).unwrap(), state)
            .await
            .unwrap();
    }
}
