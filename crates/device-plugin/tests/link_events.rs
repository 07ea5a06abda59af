//! The rtnetlink link-event watcher (as `sriovdp` wires it: `SysfsLinks::subscribe`) against this
//! machine's kernel, inside a fresh network namespace (other tests on the host create links too):
//! nothing wakes it before a change, a veth going up does. Needs root and iproute2: skipped with
//! a message outside CI, a failure under `CI=true`.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sriov_device_plugin::health::{LinkSource, SysfsLinks};
use tokio::sync::Notify;

fn ip(args: &[&str]) -> bool {
    Command::new("ip").args(args).status().is_ok_and(|s| s.success())
}

#[tokio::test]
async fn a_link_change_wakes_the_health_check() {
    sriov_test_support::require_root!();
    sriov_test_support::require!(sriov_test_support::which("ip").is_some(), "iproute2's ip");
    let ns = format!("sdpev{}", std::process::id());
    let _ = ip(&["netns", "del", &ns]);
    assert!(ip(&["netns", "add", &ns]), "ip netns add");
    let wake = Arc::new(Notify::new());
    let w = wake.clone();
    let path = format!("/run/netns/{ns}");
    // The netlink socket belongs to the namespace of the thread that creates it.
    let subscribed = std::thread::spawn(move || -> std::io::Result<()> {
        let f = std::fs::File::open(&path)?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        SysfsLinks {
            sys: "/sys".into(),
            netlink_events: true,
        }
        .subscribe(w);
        Ok(())
    })
    .join();
    let cleanup = || ip(&["netns", "del", &ns]);
    if !matches!(subscribed, Ok(Ok(()))) {
        cleanup();
        panic!("cannot subscribe inside {ns}: {subscribed:?}");
    }
    let quiet = tokio::time::timeout(Duration::from_millis(300), wake.notified())
        .await
        .is_err();
    let added = ip(&[
        "-n", &ns, "link", "add", "a0", "type", "veth", "peer", "name", "a1",
    ]);
    let woke = tokio::time::timeout(Duration::from_secs(2), wake.notified())
        .await
        .is_ok();
    cleanup();
    assert!(quiet, "woken although nothing changed in the namespace");
    assert!(added, "ip link add veth");
    assert!(woke, "no wake within 2 s of a link change");
}
