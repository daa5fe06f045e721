//! Network namespaces for tests and benchmarks: single namespaces, and a small site (a
//! scanner and hosts on one bridge) with services, firewall rules and host names. Names are
//! unique per process; everything is removed on drop, children killed first.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

fn unique(prefix: &str) -> String {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    // Namespace names end up in /etc/netns paths and ip(8) output; keep them short.
    format!("shk-{prefix}-{}-{n}", std::process::id())
}

/// A network namespace of our own, with a unique name and loopback up, always removed.
pub struct Netns(String);

impl Netns {
    pub fn new() -> Self {
        Self::named(&unique("t"))
    }

    fn named(name: &str) -> Self {
        let ok = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot create network namespace {name} (needs root and iproute2)"
        );
        let ns = Self(name.to_string());
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// `ip -n NAME ARGS...`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let status = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .status()
            .expect("ip(8) runs");
        assert!(status.success(), "ip -n {} {args:?} failed", self.0);
    }

    /// A command to run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.0]).arg(program);
        command
    }

    pub fn exec(&self, program: &Path, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .expect("ip netns exec runs")
    }

    /// Loads an nftables ruleset into this namespace.
    pub fn nft(&self, ruleset: &str) {
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft runs (package nftables)");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(ruleset.as_bytes())
            .expect("nft reads its rules");
        assert!(
            child.wait().expect("nft exits").success(),
            "nft refused:\n{ruleset}"
        );
    }

    /// Sets a sysctl of this namespace only.
    pub fn sysctl(&self, setting: &str) {
        let out = self.exec(Path::new("/usr/sbin/sysctl"), &["-w", setting]);
        assert!(
            out.status.success(),
            "sysctl -w {setting}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Default for Netns {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// One host of a [`Site`].
pub struct HostSpec {
    /// Last octet of its address in the site's /24.
    pub octet: u8,
    /// Name the scanner's `/etc/hosts` gives it (reverse DNS in tests).
    pub name: Option<String>,
    /// `fake-services` arguments: `PORT=KIND[:TEXT]`.
    pub services: Vec<String>,
    /// nftables ruleset loaded in the host (drops make ports `filtered`).
    pub nft: Option<String>,
}

/// A scanner namespace at `PREFIX.1` and hosts at `PREFIX.octet`, on one bridge inside the
/// scanner namespace; the scanner resolves host names through `/etc/netns/NAME/hosts`.
pub struct Site {
    children: Vec<Child>,
    hosts: Vec<Netns>,
    scanner: Netns,
    etc: PathBuf,
    prefix: String,
}

impl Site {
    /// `services` is the program serving fake services and the arguments that come before
    /// the services: `(fake-services, [])`, or a program with a subcommand.
    pub fn new(prefix: &str, specs: &[HostSpec], services: (&Path, &[&str])) -> Self {
        let scanner = Netns::named(&unique("scan"));
        let etc = Path::new("/etc/netns").join(scanner.name());
        let mut site = Self {
            children: Vec::new(),
            hosts: Vec::new(),
            scanner,
            etc,
            prefix: prefix.to_string(),
        };
        site.scanner.ip(&["link", "add", "br0", "type", "bridge"]);
        site.scanner
            .ip(&["addr", "add", &format!("{prefix}.1/24"), "dev", "br0"]);
        site.scanner.ip(&["link", "set", "br0", "up"]);
        let mut hosts_file = format!("127.0.0.1 localhost\n{prefix}.1 scanner.site.test\n");
        for (i, spec) in specs.iter().enumerate() {
            let host = Netns::named(&unique("h"));
            let port = format!("p{i}");
            site.scanner.ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host.name(),
            ]);
            site.scanner.ip(&["link", "set", &port, "master", "br0"]);
            site.scanner.ip(&["link", "set", &port, "up"]);
            let address = format!("{prefix}.{}", spec.octet);
            host.ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"]);
            host.ip(&["link", "set", "eth0", "up"]);
            if let Some(rules) = &spec.nft {
                host.nft(rules);
            }
            if let Some(name) = &spec.name {
                hosts_file.push_str(&format!("{address} {name}\n"));
            }
            if !spec.services.is_empty() {
                site.children
                    .push(start_services(&host, services, &spec.services));
            }
            site.hosts.push(host);
        }
        std::fs::create_dir_all(&site.etc).expect("/etc/netns is writable (root)");
        std::fs::write(site.etc.join("hosts"), hosts_file).expect("hosts file written");
        site
    }

    pub fn scanner(&self) -> &Netns {
        &self.scanner
    }

    pub fn address(&self, octet: u8) -> Ipv4Addr {
        format!("{}.{octet}", self.prefix)
            .parse()
            .expect("a valid prefix")
    }
}

fn start_services(host: &Netns, (program, before): (&Path, &[&str]), args: &[String]) -> Child {
    spawn_ready(
        host.command(program).args(before).args(args),
        "fake-services",
    )
}

/// Starts a helper that prints `ready` once it is, and waits for that line.
pub fn spawn_ready(command: &mut Command, what: &str) -> Child {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line);
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not get ready (said {line:?})");
    }
    child
}

impl Drop for Site {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

/// Two namespaces joined by a link with a fixed added delay each way (a user-space relay
/// between two TUN devices, `support/delay_relay.py`): `near` is 10.88.0.1, `far` is
/// 10.88.0.2, and a round trip takes at least twice the delay.
pub struct DelayedLink {
    relay: Child,
    pub far: Netns,
    pub near: Netns,
}

impl DelayedLink {
    pub const NEAR: &str = "10.88.0.1";
    pub const FAR: &str = "10.88.0.2";

    pub fn new(delay_ms: u32) -> Self {
        let near = Netns::named(&unique("near"));
        let far = Netns::named(&unique("far"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/delay_relay.py");
        let relay = spawn_ready(
            near.command("python3")
                .arg(script)
                .args(["wan0", "wan1", &delay_ms.to_string()]),
            "the delay relay",
        );
        let link = Self { relay, far, near };
        link.near
            .ip(&["link", "set", "wan1", "netns", link.far.name()]);
        for (ns, dev, local, peer) in [
            (&link.near, "wan0", Self::NEAR, Self::FAR),
            (&link.far, "wan1", Self::FAR, Self::NEAR),
        ] {
            ns.ip(&["addr", "add", local, "peer", peer, "dev", dev]);
            ns.ip(&["link", "set", dev, "up"]);
        }
        link
    }
}

impl Drop for DelayedLink {
    fn drop(&mut self) {
        let _ = self.relay.kill();
        let _ = self.relay.wait();
    }
}
