//! Kubernetes mode against a real kube-apiserver (v1.36.2 from `sriov-testcluster`, the
//! project's CRDs installed): the daemon reads its SriovNetworkNodeState, labels its Node,
//! publishes status through the status subresource, and runs upstream's drain handshake with
//! this test playing the drain controller. The host is the in-memory `FakeHost` (for the
//! engine-level tests) or a fixture sysfs tree (for the daemon binary). No mock API server is
//! left: every answer here is the real server's.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use sriov_api::SriovNetworkNodeState;
use sriov_api::keys::{CURRENT_STATE, DESIRED_STATE, NODE_DRAIN_STATE};
use sriov_daemon::engine::Engine;
use sriov_daemon::fake::FakeHost;
use sriov_daemon::kube_mode::{KubeBackend, SRIOV_CAPABLE_LABEL, sync_once};
use sriov_daemon::state::StateStore;
use sriov_host::{HostDevices, NetDevice, PciDevice, PfDevice};
use sriov_testcluster::Cluster;
use tokio::runtime::Runtime;

fn fake() -> FakeHost {
    let pf = PfDevice {
        pci: PciDevice {
            address: "0000:01:00.0".parse().expect("addr"),
            vendor: "8086".into(),
            device: "10c9".into(),
            class: "020000".into(),
            driver: Some("igb".into()),
            numa_node: None,
            iommu_group: Some(5),
            vfio_dev: None,
            netdevs: vec![NetDevice {
                name: "eth0".into(),
                mtu: 1500,
                ..NetDevice::default()
            }],
            rdma_devices: vec![],
            acpi_index: None,
        },
        total_vfs: 7,
        num_vfs: 0,
        eswitch_mode: None,
        vfs: vec![],
    };
    FakeHost::new(
        HostDevices {
            pfs: vec![pf],
            orphan_vfs: vec![],
        },
        "igbvf",
    )
}

fn spec(num_vfs: u32) -> serde_json::Value {
    json!({"interfaces": [{
        "pciAddress": "0000:01:00.0", "numVfs": num_vfs, "name": "eth0",
        "vfGroups": [
            {"resourceName": "net", "deviceType": "netdevice", "vfRange": "0-2", "policyName": "p"},
            {"resourceName": "dpdk", "deviceType": "vfio-pci", "vfRange": "3-3", "policyName": "q"}
        ]
    }]})
}

/// One test's world on the shared cluster: a namespace, a Node object and its NodeState (the
/// operator's part), named after the test so tests do not see each other.
struct World {
    rt: Runtime,
    client: Client,
    ns: String,
    node: String,
}

impl World {
    fn new(name: &str, num_vfs: u32) -> Option<World> {
        let cluster = Cluster::shared()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async { cluster.client() }).unwrap();
        let w = World {
            rt,
            client,
            ns: format!("{name}-ns"),
            node: name.to_string(),
        };
        w.rt.block_on(async {
            let mut crds = sriov_api::crd::sriov_crds();
            crds.push(sriov_api::crd::nad_crd());
            sriov_testcluster::crd::install(&w.client, &crds).await.unwrap();
            let pp = PostParams::default();
            let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": w.ns}})).unwrap();
            Api::<Namespace>::all(w.client.clone())
                .create(&pp, &ns)
                .await
                .unwrap();
            let node: Node = serde_json::from_value(json!({"metadata": {"name": w.node}})).unwrap();
            Api::<Node>::all(w.client.clone())
                .create(&pp, &node)
                .await
                .unwrap();
            let state: SriovNetworkNodeState = serde_json::from_value(json!({
                "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
                "metadata": {"name": w.node, "annotations": {
                    CURRENT_STATE: "Idle", DESIRED_STATE: "Idle"}},
                "spec": spec(num_vfs)
            }))
            .unwrap();
            w.states().create(&pp, &state).await.unwrap();
        });
        Some(w)
    }

    fn states(&self) -> Api<SriovNetworkNodeState> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn state(&self) -> SriovNetworkNodeState {
        self.rt.block_on(self.states().get(&self.node)).unwrap()
    }

    fn node_object(&self) -> Node {
        self.rt
            .block_on(Api::<Node>::all(self.client.clone()).get(&self.node))
            .unwrap()
    }

    fn backend(&self) -> KubeBackend {
        KubeBackend::new(
            self.rt.handle().clone(),
            self.client.clone(),
            &self.ns,
            &self.node,
        )
    }

    /// What the operator does when the policies change: a new spec (generation + 1).
    fn set_spec(&self, num_vfs: u32) {
        let patch = json!({"spec": spec(num_vfs)});
        self.rt
            .block_on(
                self.states()
                    .patch(&self.node, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .unwrap();
    }

    /// The drain controller's side of the handshake.
    fn set_current_state(&self, value: &str) {
        let patch = json!({"metadata": {"annotations": {CURRENT_STATE: value}}});
        self.rt
            .block_on(
                self.states()
                    .patch(&self.node, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .unwrap();
    }
}

fn annotation(obj: &impl ResourceExt, key: &str) -> String {
    obj.annotations().get(key).cloned().unwrap_or_default()
}

#[test]
fn first_sync_labels_the_node_and_publishes_status_through_the_subresource() {
    let Some(w) = World::new("km-first-sync", 4) else {
        return;
    };
    let generation = w.state().metadata.generation;
    let host = fake();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(&host, StateStore::in_dir(dir.path()));
    let mut b = w.backend();
    let (report, rv) = sync_once(&engine, &mut b).unwrap().expect("node state exists");
    assert_eq!(
        report.status.sync_status, "Succeeded",
        "{}",
        report.status.last_sync_error
    );
    assert!(!rv.is_empty());

    let labels: BTreeMap<String, String> = w.node_object().labels().clone();
    assert_eq!(labels.get(SRIOV_CAPABLE_LABEL).map(String::as_str), Some("true"));

    let obj = w.state();
    let status = obj.status.clone().expect("status written");
    assert_eq!(status.sync_status, "Succeeded");
    let pf = &status.interfaces[0];
    assert_eq!(pf.pci_address, "0000:01:00.0");
    assert_eq!(pf.num_vfs, 4);
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["interfaces"][0]["Vfs"][3]["driver"], "vfio-pci");
    assert_eq!(json["interfaces"][0]["Vfs"][3]["vfID"], 3);
    // Status writes went through the status subresource: the server records them as such,
    // and they do not bump the spec's generation.
    assert_eq!(obj.metadata.generation, generation);
    let status_writes: Vec<_> = obj
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .collect();
    assert!(!status_writes.is_empty(), "{:?}", obj.metadata.managed_fields);

    // Nothing changed: no host write, and the status is not written again.
    let rv_before = obj.resource_version();
    let (again, _) = sync_once(&engine, &mut b).unwrap().expect("exists");
    assert_eq!(again.writes, 0);
    assert_eq!(
        w.state().resource_version(),
        rv_before,
        "no write to the NodeState"
    );
}

#[test]
fn bad_spec_publishes_failed_with_last_sync_error() {
    let Some(w) = World::new("km-bad-spec", 9) else {
        return;
    };
    let host = fake();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(&host, StateStore::in_dir(dir.path()));
    let mut b = w.backend();
    let (report, _) = sync_once(&engine, &mut b).unwrap().expect("exists");
    assert_eq!(report.writes, 0);
    let status = w.state().status.expect("status written");
    assert_eq!(status.sync_status, "Failed");
    let err = status.last_sync_error;
    assert!(err.contains("0000:01:00.0") && err.contains("numVfs 9"), "{err}");
}

/// A numVfs change with a VF in use: the daemon asks for the drain (NodeState `desired-state`
/// and Node `state` annotations), stays InProgress and applies nothing until this test, as the
/// drain controller, answers `current-state: DrainComplete`; then it applies and goes Idle.
#[test]
fn drain_handshake_with_the_test_as_drain_controller() {
    let Some(w) = World::new("km-drain", 4) else {
        return;
    };
    let host = fake();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(&host, StateStore::in_dir(dir.path()));
    let mut b = w.backend();
    let (first, _) = sync_once(&engine, &mut b).unwrap().expect("exists");
    assert_eq!(first.status.sync_status, "Succeeded");
    let vf0 = host.devices().pfs[0].vfs[0].pci.address.clone();
    host.set_in_use([vf0].into());
    let w0 = sriov_daemon::Host::writes(&host);

    w.set_spec(6);
    let (asked, _) = sync_once(&engine, &mut b).unwrap().expect("exists");
    assert_eq!(asked.status.sync_status, "InProgress");
    assert_eq!(
        sriov_daemon::Host::writes(&host),
        w0,
        "nothing applied before the drain"
    );
    let state = w.state();
    assert_eq!(annotation(&state, DESIRED_STATE), "Drain_Required");
    assert_eq!(annotation(&w.node_object(), NODE_DRAIN_STATE), "Drain_Required");
    let status = state.status.expect("status");
    assert_eq!(status.sync_status, "InProgress");
    assert!(
        status.last_sync_error.contains("drain"),
        "{}",
        status.last_sync_error
    );

    // Not drained yet: still waiting, still nothing applied.
    let (waiting, _) = sync_once(&engine, &mut b).unwrap().expect("exists");
    assert_eq!(waiting.status.sync_status, "InProgress");
    assert_eq!(sriov_daemon::Host::writes(&host), w0);

    w.set_current_state("DrainComplete");
    let (done, _) = sync_once(&engine, &mut b).unwrap().expect("exists");
    assert_eq!(
        done.status.sync_status, "Succeeded",
        "{}",
        done.status.last_sync_error
    );
    assert_eq!(host.devices().pfs[0].num_vfs, 6);
    let state = w.state();
    assert_eq!(annotation(&state, DESIRED_STATE), "Idle");
    assert_eq!(annotation(&w.node_object(), NODE_DRAIN_STATE), "Idle");
    let status = state.status.expect("status");
    assert_eq!(status.sync_status, "Succeeded");
    assert_eq!(status.interfaces[0].num_vfs, 6);
}

/// The daemon binary in Kubernetes mode (KUBECONFIG, NODE_NAME) on a fixture sysfs tree: it
/// publishes Succeeded, follows a spec change through its watch (a bad spec → Failed naming the
/// PF and field), and stops on SIGTERM.
#[test]
fn daemon_binary_follows_its_node_state_on_a_real_apiserver() {
    use sriov_host::fixture::{FixtureHost, scratch_base};
    let Some(w) = World::new("km-binary", 4) else {
        return;
    };
    let cluster = Cluster::shared().unwrap();
    let tmp = tempfile::tempdir_in(scratch_base()).unwrap();
    let mut fx = FixtureHost::new(tmp.path().join("host"))
        .igb_82576(4)
        .build()
        .unwrap();
    fx.unbind_driver("0000:01:10.6").unwrap();
    fx.bind_driver("0000:01:10.6", "vfio-pci").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sriov-network-config-daemon"))
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("NODE_NAME", &w.node)
        .env("NAMESPACE", &w.ns)
        .env("SRIOV_SYSFS_ROOT", fx.sys())
        .env("SRIOV_DAEMON_STATE_DIR", tmp.path().join("state"))
        .env("SRIOV_DAEMON_RESYNC_SECS", "600")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let wait_for = |what: &str, ok: &dyn Fn(&SriovNetworkNodeState) -> bool| {
        let started = Instant::now();
        loop {
            let s = w.state();
            if ok(&s) {
                return s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{what}: {:?}",
                s.status
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let s = wait_for("Succeeded", &|s| {
        s.status.as_ref().is_some_and(|st| st.sync_status == "Succeeded")
    });
    assert_eq!(s.status.unwrap().interfaces[0].num_vfs, 4);
    let labels = w.node_object().labels().clone();
    assert_eq!(labels.get(SRIOV_CAPABLE_LABEL).map(String::as_str), Some("true"));

    // Resync is 10 minutes: only the watch can bring the change this fast.
    let changed = Instant::now();
    w.set_spec(9);
    let s = wait_for("Failed", &|s| {
        s.status.as_ref().is_some_and(|st| st.sync_status == "Failed")
    });
    assert!(changed.elapsed() < Duration::from_secs(30));
    let err = s.status.unwrap().last_sync_error;
    assert!(err.contains("0000:01:00.0") && err.contains("numVfs 9"), "{err}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "exits after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}

/// Before the operator has created this node's NodeState the server answers 404: the daemon
/// reports "nothing yet" (and writes nothing), not an error.
#[test]
fn no_node_state_yet_is_not_an_error() {
    let Some(w) = World::new("km-absent", 4) else {
        return;
    };
    w.rt.block_on(w.states().delete(&w.node, &Default::default()))
        .unwrap();
    let host = fake();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(&host, StateStore::in_dir(dir.path()));
    let mut b = w.backend();
    assert!(sync_once(&engine, &mut b).unwrap().is_none());
    assert_eq!(sriov_daemon::Host::writes(&host), 0);
    let labels = w.node_object().labels().clone();
    assert!(!labels.contains_key(SRIOV_CAPABLE_LABEL), "{labels:?}");
}
