// The real gRPC clients (Python grpcio: tests/grpcio/client.py; grpc-go: tools/grpc-go-client)
// as the tests and the sriovdp bench run them.
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
        "no Python grpcio at {} (run scripts/deps/40-grpc-clients.sh)",
        py.display()
    );
    // The one rule (crates/test-support): fails under CI=true, else skips with a message.
    sriov_test_support::prerequisite(false, &msg);
    None
}

/// The grpc-go client (tools/grpc-go-client, dials as the kubelet does), or `None` (with a
/// message) outside CI when it is not built. Under `CI=true` a missing client is a failure.
pub fn grpc_go() -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/grpc-go-client");
    if bin.is_file() {
        return Some(bin);
    }
    let msg = format!(
        "no grpc-go client at {} (run scripts/deps/40-grpc-clients.sh)",
        bin.display()
    );
    // The one rule (crates/test-support): fails under CI=true, else skips with a message.
    sriov_test_support::prerequisite(false, &msg);
    None
}

/// Runs the grpc-go client against `socket`; panics with its stderr when it fails; its JSON.
pub async fn run_go(bin: &Path, socket: &Path, watcher: bool) -> serde_json::Value {
    let mut cmd = tokio::process::Command::new(bin);
    if watcher {
        cmd.arg("-watcher");
    }
    let out = cmd.arg(socket).output().await.expect("run grpc-go-client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "grpc-go client on {} failed ({}):\n{}\n{}",
        socket.display(),
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("grpc-go-client prints JSON")
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
