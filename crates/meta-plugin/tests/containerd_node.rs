//! The meta plugin as a real node's CNI: the real kubelet on Debian's containerd + runc, the
//! node's CNI config `"type": "multus"` with Debian's `bridge` + `host-local` as its default
//! network, pods created through the API. The whole path runs: kubelet → containerd (CRI) →
//! `multus` (annotations from `io.kubernetes.cri.pod-annotations`, NADs from the apiserver as a
//! user holding only Multus' ClusterRole) → the reference plugins. Checked inside the pod's own
//! network namespace, on the API (network-status, events) and in the node's CNI state (leases,
//! netns, caches).
//!
//! Needs root, the reference plugins, containerd + runc (scripts/deps/30-cni.sh,
//! 45-containerd.sh, 46-pause-image.sh); under `CI=true` missing ones fail.
#![allow(clippy::unwrap_used)]

#[path = "common/cnode.rs"]
mod cnode;
mod common;

use std::time::{Duration, Instant};

use cnode::*;
use common::{HostLinks, nad, namespace, tag};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};
use sriov_meta_plugin::status::{NETWORK_STATUS_ANNOTATION, NetworkStatus};
use sriov_test_support::{require, require_binary, require_root};
use sriov_testcluster::Cluster;

fn prerequisites_present() -> bool {
    for p in ["bridge", "macvlan", "tuning", "host-local", "loopback"] {
        let path = std::path::Path::new(common::REFERENCE_PLUGINS).join(p);
        if !sriov_test_support::prerequisite(
            path.exists(),
            &format!("{} (scripts/deps/30-cni.sh)", path.display()),
        ) {
            return false;
        }
    }
    true
}

async fn network_status(pods: &Api<Pod>, name: &str) -> Vec<NetworkStatus> {
    let p = pods.get(name).await.unwrap();
    let text = p
        .metadata
        .annotations
        .unwrap_or_default()
        .get(NETWORK_STATUS_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| panic!("pod {name} has no {NETWORK_STATUS_ANNOTATION}"));
    serde_json::from_str(&text).unwrap()
}

/// A pod with two secondary networks (macvlan on a veth the test creates, with a requested MAC
/// and IP; bridge) gets eth0, net1, net2 in its own netns with the right kinds, MACs and IPs, and
/// Multus' network-status; deleting the pod runs every DEL (every lease freed, the bridge port
/// gone, no netns or cache left). Then a pod naming a missing NAD fails its sandbox with a
/// FailedCreatePodSandBox event naming the network, and leaks nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_gets_two_secondary_networks_and_delete_frees_every_lease() {
    require_root!();
    require_binary!("containerd");
    require!(prerequisites_present(), "the reference plugins");
    let Some(cluster) = Cluster::shared() else { return };
    let Some(m) = start(cluster, "meta-cnode-1", Plugin::Direct).await else {
        return;
    };
    let client = cluster.client().unwrap();
    let ns = "meta-cnode-a";
    namespace(&client, ns).await;
    let t = tag();
    let (master, sec_br) = (format!("mn{t}a"), format!("mn{t}s"));
    let _links = HostLinks::veth(&master, &format!("mn{t}b")).also(&sec_br);
    let x = m.octet;
    nad(&client, ns, "macvlan-net", &macvlan_nad(&master, x), None).await;
    nad(&client, ns, "bridge-net", &bridge_nad(&sec_br, x), None).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mac = "02:aa:bb:cc:dd:0e";
    let want_ip = format!("10.220.{x}.77");
    let networks =
        format!(r#"[{{"name":"macvlan-net","mac":"{mac}","ips":["{want_ip}/24"]}},{{"name":"bridge-net"}}]"#);
    create(&pods, &pod("two", m.node.name(), &m.image, Some(&networks))).await;
    let pod_ip = running(&pods, "two", &m).await;
    let subnet = m.node.containerd().unwrap().pod_subnet().trim_end_matches("0/24");
    assert!(pod_ip.starts_with(subnet), "{pod_ip} not in {subnet}0/24");

    // Inside the pod's netns (the sandbox's and the container's: one pod runs).
    let pids = task_pids(&m);
    assert_eq!(pids.len(), 2, "sandbox + container: {pids:?}");
    let links = links_in(pids[0]);
    let names: Vec<&str> = links.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(names, ["lo", "eth0", "net1", "net2"], "{links:?}");
    let (eth0, net1, net2) = (&links[1], &links[2], &links[3]);
    assert_eq!(eth0.1, "veth");
    assert_eq!(eth0.3, vec![format!("{pod_ip}/24")]);
    assert_eq!(net1.1, "macvlan");
    assert_eq!(net1.2, mac);
    assert_eq!(net1.3, vec![format!("{want_ip}/24")]);
    assert_eq!(net2.1, "veth");
    assert_eq!(net2.3.len(), 1, "{net2:?}");
    assert!(net2.3[0].starts_with(&format!("10.221.{x}.")), "{net2:?}");
    assert_eq!(bridge_ports(&sec_br).len(), 1, "{:?}", bridge_ports(&sec_br));

    // network-status: default first, then the NADs in order, as the pod's netns says.
    let status = network_status(&pods, "two").await;
    let got: Vec<(&str, &str, bool)> = status
        .iter()
        .map(|s| (s.name.as_str(), s.interface.as_str(), s.default))
        .collect();
    assert_eq!(
        got,
        [
            (sriov_testcluster::containerd::DEFAULT_NETWORK, "eth0", true),
            ("meta-cnode-a/macvlan-net", "net1", false),
            ("meta-cnode-a/bridge-net", "net2", false),
        ]
    );
    assert_eq!(status[0].ips, vec![pod_ip.clone()]);
    assert_eq!(status[0].mac, eth0.2);
    assert_eq!(status[1].ips, vec![want_ip.clone()]);
    assert_eq!(status[1].mac, mac);
    assert_eq!(status[2].ips, vec![net2.3[0].trim_end_matches("/24").to_string()]);
    assert_eq!(status[2].mac, net2.2);

    // Every network holds one lease, the meta plugin cached one attachment.
    let h = held(&m);
    assert_eq!(
        h.leases,
        [
            format!("bridge-net/{}", status[2].ips[0]),
            format!("macvlan-net/{want_ip}"),
            format!("{}/{pod_ip}", sriov_testcluster::containerd::DEFAULT_NETWORK),
        ]
    );
    assert_eq!(h.netns.len(), 1, "{h:?}");
    assert_eq!(h.attachments.len(), 1, "{h:?}");

    // Delete: every DEL ran (leases, the bridge's port, netns, caches gone).
    deleted(&pods, "two").await;
    nothing_left(&m).await;
    assert!(bridge_ports(&sec_br).is_empty(), "{:?}", bridge_ports(&sec_br));
    assert!(bridge_ports(&m.default_bridge).is_empty());
    assert!(task_pids(&m).is_empty());

    // A missing NAD: the sandbox fails with an event naming the network; nothing is attached.
    create(
        &pods,
        &pod("lost", m.node.name(), &m.image, Some("macvlan-net,absent-net")),
    )
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    let message = loop {
        let list = events
            .list(&ListParams::default().fields("involvedObject.name=lost"))
            .await
            .unwrap();
        if let Some(e) = list
            .items
            .iter()
            .find(|e| e.reason.as_deref() == Some("FailedCreatePodSandBox"))
        {
            break e.message.clone().unwrap_or_default();
        }
        assert!(
            started.elapsed() < LIMIT,
            "no FailedCreatePodSandBox for pod lost: {:?}\n{}",
            list.items
                .iter()
                .map(|e| (&e.reason, &e.message))
                .collect::<Vec<_>>(),
            tail(&m.log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(message.contains("meta-cnode-a/absent-net"), "{message}");
    assert!(message.contains("not found"), "{message}");
    let p = pods.get("lost").await.unwrap();
    assert_ne!(p.status.unwrap().phase.as_deref(), Some("Running"));
    deleted(&pods, "lost").await;
    nothing_left(&m).await;
}

/// Restarts of containerd and of the kubelet keep a pod's attachments (same leases) and a new
/// pod still gets its networks (`name@iface` naming); a pod deleted from the API while the
/// kubelet is down is torn down when it comes back (DEL from the meta plugin's cache, without
/// the pod object); in the end no netns, lease or cached attachment is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_and_deletes_while_kubelet_is_down_leak_nothing() {
    require_root!();
    require_binary!("containerd");
    require!(prerequisites_present(), "the reference plugins");
    let Some(cluster) = Cluster::shared() else { return };
    let Some(mut m) = start(cluster, "meta-cnode-2", Plugin::Direct).await else {
        return;
    };
    let client = cluster.client().unwrap();
    let ns = "meta-cnode-b";
    namespace(&client, ns).await;
    let t = tag();
    let (master, sec_br) = (format!("mr{t}a"), format!("mr{t}s"));
    let _links = HostLinks::veth(&master, &format!("mr{t}b")).also(&sec_br);
    let x = m.octet;
    nad(&client, ns, "macvlan-net", &macvlan_nad(&master, x), None).await;
    nad(&client, ns, "bridge-net", &bridge_nad(&sec_br, x), None).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let networks = Some("macvlan-net,bridge-net@blue");
    create(&pods, &pod("r1", m.node.name(), &m.image, networks)).await;
    running(&pods, "r1", &m).await;
    let ifaces = |s: Vec<NetworkStatus>| s.into_iter().map(|s| s.interface).collect::<Vec<_>>();
    assert_eq!(
        ifaces(network_status(&pods, "r1").await),
        ["eth0", "net1", "blue"]
    );
    let before = held(&m);
    assert_eq!(before.leases.len(), 3, "{before:?}");

    m.node.restart_containerd().unwrap();
    create(&pods, &pod("r2", m.node.name(), &m.image, networks)).await;
    running(&pods, "r2", &m).await;
    m.node.restart().unwrap();
    running(&pods, "r1", &m).await;
    running(&pods, "r2", &m).await;
    let h = held(&m);
    assert_eq!(h.leases.len(), 6, "{h:?}");
    assert!(
        before.leases.iter().all(|l| h.leases.contains(l)),
        "{before:?} → {h:?}"
    );
    assert_eq!((h.netns.len(), h.attachments.len()), (2, 2), "{h:?}");

    // r2 deleted from the API while the kubelet is down: the kubelet finds its sandbox orphaned
    // when it starts again and removes it (the meta plugin's DEL without the pod object).
    m.node.stop();
    deleted(&pods, "r2").await;
    m.node.start().unwrap();
    let started = Instant::now();
    while held(&m).leases.len() != 3 {
        assert!(
            started.elapsed() < LIMIT,
            "r2's attachments not removed: {:?}\n{}",
            held(&m),
            tail(&m.log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(held(&m).leases, before.leases);
    running(&pods, "r1", &m).await;

    deleted(&pods, "r1").await;
    nothing_left(&m).await;
    assert!(bridge_ports(&sec_br).is_empty(), "{:?}", bridge_ports(&sec_br));
}
