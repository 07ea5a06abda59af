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
    let mut args = vec![mode];
    args.extend_from_slice(extra);
    run_script(py, "client.py", out_dir, socket, &args).await
}

/// Runs tests/grpcio/SCRIPT PROTO_DIR OUT_DIR SOCKET ARGS...; panics with its stderr when it
/// fails; its JSON output.
#[allow(dead_code)] // not every includer runs other scripts
pub async fn run_script(
    py: &Path,
    script: &str,
    out_dir: &Path,
    socket: &Path,
    args: &[&str],
) -> serde_json::Value {
    let mode = args.first().copied().unwrap_or_default();
    let extra = args.get(1..).unwrap_or_default();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = tokio::process::Command::new(py);
    cmd.arg(dir.join("tests/grpcio").join(script))
        .arg(dir.join("proto"))
        .arg(out_dir)
        .arg(socket)
        .arg(mode)
        .args(extra);
    let out = cmd.output().await.expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "grpcio {script} {mode} on {} failed ({}):\n{}\n{}",
        socket.display(),
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("client.py prints JSON")
}
