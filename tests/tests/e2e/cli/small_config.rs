//! A `nester.toml` holding only `data_dir`: every section takes its defaults, so every
//! administrative command works with a two-line file; and a refused value is named with its
//! key and line.

use crate::process::{NesterFiles, run, stderr};

#[test]
fn a_config_with_only_the_data_dir_serves_every_admin_command() {
    let temp = tempfile::tempdir().unwrap();
    let files = NesterFiles::new(temp.path());
    let small = temp.path().join("small.toml");
    std::fs::write(
        &small,
        format!("data_dir = {:?}\n", files.data.to_str().unwrap()),
    )
    .unwrap();
    let config = small.to_str().unwrap();
    for command in [
        "probe list",
        "token list",
        "user list",
        "api-token list",
        "audit verify",
        "ban list",
        "alerts list",
        "db stats",
        "ca status",
        "ssh status",
        "certs status",
    ] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.extend(["--config", config]);
        let out = run("nester", &args);
        assert!(out.status.success(), "nester {command}: {}", stderr(&out));
    }
    let out = run("nester", &["audit", "verify", "--config", config]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit log intact"));

    std::fs::write(
        &small,
        format!(
            "data_dir = {:?}\n\n[retention]\nevery = \"5s\"\n",
            files.data.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = run("nester", &["user", "list", "--config", config]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(config) && err.contains("line 4") && err.contains("`retention.every`"),
        "{err}"
    );
}
