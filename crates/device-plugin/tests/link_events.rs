//! The rtnetlink link-event watcher (as `sriovdp` wires it: `SysfsLinks::subscribe`) against this machine's kernel: a veth going up wakes the
//! health check. Needs root (CAP_NET_ADMIN) and iproute2; skipped with a message otherwise.

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
    if !nix::unistd::Uid::effective().is_root() {
        println!("INFO: skipping: needs root to create a veth");
        return;
    }
    let (a, b) = ("sdpev0", "sdpev1");
    let _ = ip(&["link", "del", a]);
    assert!(
        ip(&["link", "add", a, "type", "veth", "peer", "name", b]),
        "ip link add veth"
    );
    let wake = Arc::new(Notify::new());
    // The production wiring: SysfsLinks with events on starts the RTMGRP_LINK watcher.
    SysfsLinks {
        sys: "/sys".into(),
        netlink_events: true,
    }
    .subscribe(wake.clone());
    // Nothing has changed since subscribing: no wake yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), wake.notified())
            .await
            .is_err()
    );
    assert!(ip(&["link", "set", a, "up"]));
    let woke = tokio::time::timeout(Duration::from_secs(2), wake.notified()).await;
    let _ = ip(&["link", "del", a]);
    assert!(woke.is_ok(), "no wake within 2 s of a link change");
}
