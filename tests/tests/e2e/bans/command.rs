//! `nester ban`: list, add, remove, and the allow-list refused.

use crate::process::{NesterFiles, run, stderr};

#[test]
fn nester_ban_lists_adds_and_removes_and_refuses_the_allow_list() {
    let temp = tempfile::tempdir().unwrap();
    let files = NesterFiles::new(temp.path());
    let cli = |args: &[&str]| {
        let mut all = vec!["ban"];
        all.extend(args);
        all.extend(["--config", files.config_arg()]);
        run("nester", &all)
    };
    let added = cli(&[
        "add",
        "2001:db8:1:2::77",
        "--duration",
        "2h",
        "--reason",
        "scanner",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    let list = String::from_utf8(cli(&["list"]).stdout).unwrap();
    assert!(
        list.contains("2001:db8:1:2::/64") && list.contains("scanner"),
        "{list}"
    );
    let refused = cli(&["add", "127.0.0.1"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("allow-list"),
        "{}",
        stderr(&refused)
    );
    let bad = cli(&["add", "not-an-address"]);
    assert!(!bad.status.success() && stderr(&bad).contains("not an IP address"));
    let removed = cli(&["remove", "2001:db8:1:2::1"]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    let again = cli(&["remove", "2001:db8:1:2::1"]);
    assert!(!again.status.success() && stderr(&again).contains("not banned"));
    let list = String::from_utf8(cli(&["list"]).stdout).unwrap();
    assert!(!list.contains("2001:db8"), "{list}");
}
