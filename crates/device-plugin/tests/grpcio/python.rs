// The Python grpcio client (tests/grpcio/client.py) as the tests and the sriovdp bench run it.
// Included with `include!` by both, so it has no inner doc comment.

use std::path::{Path, PathBuf};

/// The venv's python with grpcio, or `None` (with a message) outside CI when it is missing.
/// Under `CI=true` a missing grpcio is a failure, never a skip.
pub fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = root.join(".tools/grpcio-venv/bin/python");
    let ok = std::process::Command::new(&py)
        .args(["-c", "import grpc, grpc_tools"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    let msg = format!(
        "no Python grpcio at {} (run scripts/deps/40-grpcio.sh)",
        py.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIP: {msg}");
    None
}

/// Runs client.py MODE against `socket`; panics with its stderr when it fails; its JSON output.
pub async fn run(
    py: &Path,
    out_dir: &Path,
    socket: &Path,
    mode: &str,
    extra: &[&str],
) -> serde_json::Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = tokio::process::Command::new(py);
    cmd.arg(dir.join("tests/grpcio/client.py"))
        .arg(dir.join("proto"))
        .arg(out_dir)
        .arg(socket)
        .arg(mode)
        .args(extra);
    let out = cmd.output().await.expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "grpcio client {mode} on {} failed ({}):\n{}\n{}",
        socket.display(),
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("client.py prints JSON")
}
