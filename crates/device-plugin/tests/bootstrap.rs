//! The generated gRPC code in `src/gen/` is checked in, so normal builds need neither protoc nor
//! protox. This test regenerates it from `proto/` (pure-Rust protox, no protoc) and fails when the
//! checked-in files differ. `SRIOVDP_BOOTSTRAP_WRITE=1 cargo test -p sriov-device-plugin --test
//! bootstrap` rewrites them.

use std::path::PathBuf;

#[test]
fn generated_code_matches_protos() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let protos = [
        "proto/deviceplugin_v1beta1.proto",
        "proto/pluginregistration_v1.proto",
        "proto/podresources_v1.proto",
    ]
    .map(|p| root.join(p));
    let fds = protox::compile(&protos, [root.join("proto")]).expect("protos compile");
    let out = tempfile::tempdir().expect("tempdir");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .out_dir(out.path())
        .compile_fds(fds)
        .expect("codegen");
    let write = std::env::var_os("SRIOVDP_BOOTSTRAP_WRITE").is_some();
    let mut stale = Vec::new();
    for name in ["v1beta1.rs", "pluginregistration.rs", "v1.rs"] {
        let fresh = std::fs::read_to_string(out.path().join(name)).expect("generated file");
        let checked_in = root.join("src/gen").join(name);
        if write {
            std::fs::write(&checked_in, &fresh).expect("write generated");
        } else if std::fs::read_to_string(&checked_in).ok().as_deref() != Some(fresh.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "src/gen/{stale:?} do not match proto/: rerun with SRIOVDP_BOOTSTRAP_WRITE=1"
    );
}
