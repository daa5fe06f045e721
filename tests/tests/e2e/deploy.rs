//! `deploy/`: the systemd units are sandboxed below their exposure targets, `install.sh` is
//! idempotent and never overwrites an edited config, and both units really run under systemd:
//! a container booted with systemd-nspawn from this machine's own /usr (volatile root, host
//! network) installs them, starts them, enrolls the harvester and sees a report stored
//! (tests/systemd/check.sh).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{closed_port, free_port};
use crate::process::binary;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `program args`, which must be installed (tests/run installs it).
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("`{program}` cannot run ({e}); tests/run installs it"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn units_are_sandboxed_below_their_exposure_targets() {
    for (unit, target) in [("nester", 2.5), ("harvester", 3.5)] {
        let path = repo().join(format!("deploy/systemd/{unit}.service"));
        let out = run(
            "systemd-analyze",
            &["security", "--offline=yes", path.to_str().unwrap()],
        );
        let said = text(&out);
        // A misspelt setting is only a warning to systemd, and a hole in the sandbox to us.
        assert!(
            !said.contains("Unknown key") && !said.contains("Unknown section"),
            "{said}"
        );
        let prefix = format!("Overall exposure level for {unit}.service: ");
        let score: f64 = said
            .lines()
            .find_map(|l| l.split(&prefix).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no exposure level in:\n{said}"))
            .parse()
            .unwrap();
        assert!(
            score <= target,
            "{unit}: exposure {score} > {target}\n{said}"
        );
    }
}

#[test]
fn the_host_certificate_watch_is_a_valid_unit_pair() {
    let path = repo().join("deploy/systemd/seahawks-ssh-host-certificate.path");
    let out = run("systemd-analyze", &["verify", path.to_str().unwrap()]);
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "{}",
        text(&out)
    );
    // It watches the file the sshd snippet reads and the harvester example writes.
    let unit = std::fs::read_to_string(&path).unwrap();
    let watched = unit
        .lines()
        .find_map(|l| l.strip_prefix("PathChanged="))
        .unwrap();
    let sshd = std::fs::read_to_string(repo().join("deploy/sshd_config.d/seahawks.conf")).unwrap();
    assert!(
        sshd.contains(&format!("HostCertificate {watched}\n")),
        "{sshd}"
    );
    let example = std::fs::read_to_string(repo().join("deploy/harvester.example.toml")).unwrap();
    assert!(example.contains(&format!("host_certificate = \"{watched}\"")));
}

/// The built binaries, where install.sh looks for them.
fn binaries() -> PathBuf {
    binary("nester");
    binary("harvester").parent().unwrap().to_path_buf()
}

fn install(root: &Path, args: &[&str]) -> Output {
    let script = repo().join("deploy/install.sh");
    let mut all = vec![script.to_str().unwrap(), "--root", root.to_str().unwrap()];
    all.extend(args);
    run("sh", &all)
}

fn id_of(root: &Path, file: &str, name: &str) -> u32 {
    let table = std::fs::read_to_string(root.join(file)).unwrap();
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with(&format!("{name}:")))
        .collect();
    assert_eq!(rows.len(), 1, "{name} in {file}:\n{table}");
    rows[0].split(':').nth(2).unwrap().parse().unwrap()
}

#[test]
fn install_sh_is_idempotent_and_keeps_an_edited_config() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let bins = binaries();
    let components = ["--binaries", bins.to_str().unwrap(), "nester", "harvester"];
    let first = install(&root, &components);
    assert!(first.status.success(), "{}", text(&first));
    let config = root.join("etc/seahawks/nester.toml");
    let mut edited = std::fs::read_to_string(&config).unwrap();
    edited.push_str("# the operator's edit\n");
    std::fs::write(&config, &edited).unwrap();

    let second = install(&root, &components);
    assert!(second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("kept"), "{}", text(&second));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    let example = std::fs::read_to_string(root.join("etc/seahawks/nester.toml.example")).unwrap();
    assert_eq!(
        example,
        std::fs::read_to_string(repo().join("deploy/nester.example.toml")).unwrap()
    );

    for c in ["nester", "harvester"] {
        let user = format!("seahawks-{c}");
        let (uid, gid) = (
            id_of(&root, "etc/passwd", &user),
            id_of(&root, "etc/group", &user),
        );
        let state = std::fs::metadata(root.join(format!("var/lib/{user}"))).unwrap();
        assert_eq!(
            (state.mode() & 0o777, state.uid(), state.gid()),
            (0o700, uid, gid),
            "{c} state"
        );
        let config = std::fs::metadata(root.join(format!("etc/seahawks/{c}.toml"))).unwrap();
        assert_eq!(
            (config.mode() & 0o777, config.uid(), config.gid()),
            (0o640, 0, gid)
        );
        let installed = root.join(format!("usr/local/bin/{c}"));
        assert_eq!(
            std::fs::read(&installed).unwrap(),
            std::fs::read(bins.join(c)).unwrap()
        );
        assert_eq!(
            std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(
            root.join(format!("etc/systemd/system/{c}.service"))
                .is_file()
        );
    }
    for unit in ["path", "service"] {
        let name = format!("etc/systemd/system/seahawks-ssh-host-certificate.{unit}");
        assert!(root.join(name).is_file(), "with the harvester");
    }

    // Bad invocations say what to do and install nothing.
    let none = install(&root, &[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        text(&none).contains("nester, harvester or both"),
        "{}",
        text(&none)
    );
    let empty = temp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let other = temp.path().join("other");
    let missing = install(&other, &["--binaries", empty.to_str().unwrap(), "nester"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).contains("cargo build --release"),
        "{}",
        text(&missing)
    );
    assert!(!other.exists());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn both_units_run_under_systemd_and_a_report_is_stored() {
    let temp = tempfile::tempdir().unwrap();
    let payload = temp.path().join("payload");
    let out = temp.path().join("out");
    std::fs::create_dir_all(payload.join("bin")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    for c in ["nester", "harvester"] {
        std::fs::copy(binary(c), payload.join("bin").join(c)).unwrap();
    }
    copy_dir(&repo().join("deploy"), &payload.join("deploy"));
    std::fs::copy(
        repo().join("tests/systemd/check.sh"),
        payload.join("check.sh"),
    )
    .unwrap();
    let unit = repo().join("tests/systemd/seahawks-check.service");
    std::fs::write(
        payload.join("ports"),
        format!("{} {} {}\n", free_port(), free_port(), closed_port()),
    )
    .unwrap();

    let bind = |from: &Path, to: &str, how: &str| format!("--{how}={}:{to}", from.display());
    let args = [
        "--directory=/".to_string(),
        // A tmpfs root with this machine's /usr read-only, so nothing it does stays; the
        // host's network, so loopback is shared; /usr/local writable for install.sh.
        "--volatile=yes".into(),
        "--register=no".into(),
        "--keep-unit".into(),
        "--quiet".into(),
        "--console=pipe".into(),
        "--tmpfs=/usr/local".into(),
        bind(&payload, "/payload", "bind-ro"),
        bind(&out, "/out", "bind"),
        bind(
            &unit,
            "/etc/systemd/system/seahawks-check.service",
            "bind-ro",
        ),
        "--boot".into(),
        "systemd.unit=seahawks-check.service".into(),
    ];
    let mut child = Command::new("systemd-nspawn")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("systemd-nspawn runs (tests/run installs systemd-container)");
    // Bounded: a hung boot fails the test instead of the suite.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the container did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(out.join("check.log")).unwrap_or_default();
    assert!(status.success(), "container exited with {status}:\n{log}");
    assert!(
        log.contains("REPORT STORED") && log.contains("SANDBOX OK"),
        "{log}"
    );
}
