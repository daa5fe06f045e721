//! The Python interop checkers (`tests/interop/`, in the venv `tests/run` makes): the
//! interpreter, and the report verifier (PyJWT and cryptography) run on a JWS.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn python() -> String {
    std::env::var("SEAHAWKS_PYTHON").unwrap_or_else(|_| {
        panic!("SEAHAWKS_PYTHON is not set: run the suite with `tests/run`, which installs the Python checker")
    })
}

/// Runs the Python verifier on `jws`; returns its exit status and output.
pub fn python_verify(dir: &Path, ca_pem: &[u8], jws: &[u8]) -> (bool, String) {
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
    std::fs::write(dir.join("report.jws"), jws).unwrap();
    let out = Command::new(python())
        .arg(repo().join("tests/interop/verify_report.py"))
        .arg("--ca")
        .arg(dir.join("ca.pem"))
        .arg("--schema")
        .arg(repo().join("shared/schema/report.schema.json"))
        .arg(dir.join("report.jws"))
        .output()
        .expect("the Python checker runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
