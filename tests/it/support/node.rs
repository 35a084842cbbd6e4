//! Runs one of the programs in `tests/node` that checks something and
//! prints `ok` (and exits 0) when every step passed.

use std::ffi::OsStr;
use std::path::Path;

/// Runs `tests/node/<script>` with `args`; panics with its output, naming
/// `what`, unless it printed `ok` and exited 0.
pub async fn check(script: &str, args: &[&OsStr], what: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new("node")
        .arg(root.join("tests/node").join(script))
        .args(args)
        .output()
        .await
        .expect("running node (scripts/test.sh installs it and the npm packages the tests use)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
