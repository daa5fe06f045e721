//! Bad input at the command line: a clear error and a failing exit code.

use crate::process::{run, stderr};

#[test]
fn bad_input_gets_a_clear_error_and_a_failing_exit_code() {
    let temp = tempfile::tempdir().unwrap();
    let broken = temp.path().join("broken.toml");
    std::fs::write(
        &broken,
        "data_dir = \"/x\"\n[ingest]\nlisten = \"not an address\"\n",
    )
    .unwrap();
    let data = temp.path().join("data");
    assert!(
        run("nester", &["init", "--data-dir", data.to_str().unwrap()])
            .status
            .success()
    );

    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "harvester",
            vec!["scan", "127.0.0.1", "--ports", "0-5"],
            "port 0 cannot be scanned",
        ),
        (
            "harvester",
            vec!["scan", "10.0.0.0/8", "--ports", "22"],
            "narrow the range",
        ),
        (
            "harvester",
            vec!["run", "--config", "/nonexistent/harvester.toml"],
            "`harvester default-config > /nonexistent/harvester.toml`",
        ),
        (
            "nester",
            vec!["db", "stats", "--config", "/nonexistent/nester.toml"],
            "`nester default-config > /nonexistent/nester.toml`",
        ),
        (
            "nester",
            vec!["serve", "--config", broken.to_str().unwrap()],
            "line 3",
        ),
        (
            "nester",
            vec!["init", "--data-dir", data.to_str().unwrap()],
            "already initialised",
        ),
        (
            "harvester",
            vec!["enroll", "--token", "SHK1.abc", "--state-dir", "/tmp/x"],
            "refusing a token on the command line",
        ),
        (
            "harvester",
            vec![
                "enroll",
                "--token-file",
                "/nonexistent/token",
                "--state-dir",
                "/tmp/x",
            ],
            "/nonexistent/token",
        ),
        (
            "harvester",
            vec![
                "enroll",
                "--token-file",
                broken.to_str().unwrap(),
                "--state-dir",
                "/tmp/x",
            ],
            "not a Seahawks enrollment token",
        ),
        (
            "nester",
            vec![
                "token",
                "create",
                "--config",
                "/nonexistent/n.toml",
                "--site",
                "x",
            ],
            "/nonexistent/n.toml",
        ),
    ];
    for (bin, args, message) in cases {
        let out = run(bin, &args);
        assert!(!out.status.success(), "{bin} {args:?} succeeded");
        let err = stderr(&out);
        assert!(
            err.contains(message),
            "{bin} {args:?}: expected `{message}` in: {err}"
        );
    }
}
