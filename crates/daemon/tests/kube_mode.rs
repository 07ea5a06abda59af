//! Kubernetes mode against a mock API server that speaks the real HTTP/JSON (tower-test): the
//! requests the daemon makes (paths, methods, patch bodies) and the API's answers as the API
//! server gives them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use sriov_daemon::engine::Engine;
use sriov_daemon::fake::FakeHost;
use sriov_daemon::kube_mode::{KubeBackend, SRIOV_CAPABLE_LABEL, sync_once};
use sriov_daemon::state::StateStore;
use sriov_host::{HostDevices, NetDevice, PciDevice, PfDevice};

const NS: &str = "sriov-network-operator";
const NODE: &str = "worker-1";
const STATES: &str =
    "/apis/sriovnetwork.openshift.io/v1/namespaces/sriov-network-operator/sriovnetworknodestates";

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

fn node_state(num_vfs: u32, generation: i64, current_state: &str) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovNetworkNodeState",
        "metadata": {
            "name": NODE, "namespace": NS, "generation": generation, "resourceVersion": "100",
            "annotations": {
                "sriovnetwork.openshift.io/current-state": current_state,
                "sriovnetwork.openshift.io/desired-state": "Idle"
            }
        },
        "spec": {"interfaces": [{
            "pciAddress": "0000:01:00.0", "numVfs": num_vfs, "name": "eth0",
            "vfGroups": [
                {"resourceName": "net", "deviceType": "netdevice", "vfRange": "0-2", "policyName": "p"},
                {"resourceName": "dpdk", "deviceType": "vfio-pci", "vfRange": "3-3", "policyName": "q"}
            ]
        }]}
    })
}

fn node() -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "resourceVersion": "7"}})
}

/// One expected request: method, path, and the answer (the request's body is recorded).
type Step = (Method, String, Value);
type Seen = Arc<Mutex<Vec<(Method, String, Value)>>>;

/// A runtime with a mock API server answering `script` in order; returns the client and the
/// requests seen.
fn mock(rt: &tokio::runtime::Runtime, script: Vec<Step>) -> (Client, Seen) {
    let _g = rt.enter();
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen: Seen = Arc::default();
    let rec = seen.clone();
    rt.spawn(async move {
        for (method, path, answer) in script {
            let next = tokio::time::timeout(Duration::from_secs(5), handle.next_request()).await;
            let Ok(Some((req, send))) = next else {
                rec.lock().expect("lock").push((
                    Method::OPTIONS,
                    format!("MISSING {method} {path}"),
                    Value::Null,
                ));
                return;
            };
            let (m, p) = (req.method().clone(), req.uri().path().to_string());
            let ct = req
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("").to_string());
            let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
            let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if m == Method::PATCH {
                body["__content_type"] = json!(ct);
            }
            rec.lock().expect("lock").push((m, p, body));
            let resp = Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                .expect("response");
            send.send_response(resp);
        }
    });
    (Client::new(svc, NS), seen)
}

fn paths(seen: &Seen) -> Vec<String> {
    seen.lock()
        .expect("lock")
        .iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect()
}

#[test]
fn first_sync_labels_applies_and_publishes_status() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let state_obj = node_state(4, 3, "Idle");
    let script = vec![
        (Method::GET, format!("{STATES}/{NODE}"), state_obj.clone()),
        (Method::PATCH, format!("/api/v1/nodes/{NODE}"), node()),
        (
            Method::PATCH,
            format!("{STATES}/{NODE}/status"),
            state_obj.clone(),
        ),
        (
            Method::PATCH,
            format!("{STATES}/{NODE}/status"),
            state_obj.clone(),
        ),
        // second iteration: same spec; nothing written to the host, status unchanged → no PATCH
        (Method::GET, format!("{STATES}/{NODE}"), state_obj.clone()),
    ];
    let (client, seen) = mock(&rt, script);
    let host = fake();
    let dir = tempfile::tempdir().expect("tmp");
    let engine = Engine::new(&host, StateStore::in_dir(dir.path()));
    let mut b = KubeBackend::new(rt.handle().clone(), client, NS, NODE);
    let (report, rv) = sync_once(&engine, &mut b)
        .expect("api")
        .expect("node state exists");
    assert_eq!(
        report.status.sync_status, "Succeeded",
        "{}",
        report.status.last_sync_error
    );
    assert_eq!(rv, "100");
    let (again, _) = sync_once(&engine, &mut b)
        .expect("api")
        .expect("node state exists");
    assert_eq!(again.writes, 0);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        paths(&seen),
        [
            format!("GET {STATES}/{NODE}"),
            format!("PATCH /api/v1/nodes/{NODE}"),
            format!("PATCH {STATES}/{NODE}/status"),
            format!("PATCH {STATES}/{NODE}/status"),
            format!("GET {STATES}/{NODE}"),
        ]
    );
    let s = seen.lock().expect("lock");
    assert_eq!(s[1].2["metadata"]["labels"][SRIOV_CAPABLE_LABEL], "true");
    assert_eq!(s[1].2["__content_type"], "application/merge-patch+json");
    assert_eq!(s[2].2["status"]["syncStatus"], "InProgress");
    assert_eq!(s[3].2["status"]["syncStatus"], "Succeeded");
    let pf = &s[3].2["status"]["interfaces"][0];
    assert_eq!(pf["pciAddress"], "0000:01:00.0");
    assert_eq!(pf["numVfs"], 4);
    assert_eq!(pf["Vfs"][3]["driver"], "vfio-pci");
    assert_eq!(pf["Vfs"][3]["vfID"], 3);
}

#[test]
fn bad_spec_publishes_failed_with_last_sync_error() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let state_obj = node_state(9, 4, "Idle");
    let script = vec![
        (Method::GET, format!("{STATES}/{NODE}"), state_obj.clone()),
        (Method::PATCH, format!("/api/v1/nodes/{NODE}"), node()),
        (Method::PATCH, format!("{STATES}/{NODE}/status"), state_obj),
    ];
    let (client, seen) = mock(&rt, script);
    let host = fake();
    let dir = tempfile::tempdir().expect("tmp");
    let engine = Engine::new(&host, StateStore::in_dir(dir.path()));
    let mut b = KubeBackend::new(rt.handle().clone(), client, NS, NODE);
    let (report, _) = sync_once(&engine, &mut b).expect("api").expect("exists");
    assert_eq!(report.writes, 0);
    std::thread::sleep(Duration::from_millis(100));
    let s = seen.lock().expect("lock");
    assert_eq!(s.len(), 3, "{:?}", paths(&seen));
    assert_eq!(s[2].2["status"]["syncStatus"], "Failed");
    let err = s[2].2["status"]["lastSyncError"].as_str().unwrap_or_default();
    assert!(err.contains("0000:01:00.0") && err.contains("numVfs 9"), "{err}");
}

/// A numVfs change with a VF in use: the daemon asks for the drain (NodeState desired-state and
/// Node state annotations), stays InProgress, applies only after DrainComplete, then goes Idle.
#[test]
fn drain_handshake() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let host = fake();
    let dir = tempfile::tempdir().expect("tmp");
    let engine = Engine::new(&host, StateStore::in_dir(dir.path()));
    // Bring the host to 4 VFs first, with one VF then held by a pod.
    {
        let (client, _) = mock(
            &rt,
            vec![
                (Method::GET, format!("{STATES}/{NODE}"), node_state(4, 1, "Idle")),
                (Method::PATCH, format!("/api/v1/nodes/{NODE}"), node()),
                (
                    Method::PATCH,
                    format!("{STATES}/{NODE}/status"),
                    node_state(4, 1, "Idle"),
                ),
                (
                    Method::PATCH,
                    format!("{STATES}/{NODE}/status"),
                    node_state(4, 1, "Idle"),
                ),
            ],
        );
        let mut b = KubeBackend::new(rt.handle().clone(), client, NS, NODE);
        sync_once(&engine, &mut b).expect("api");
    }
    let vf0 = host.devices().pfs[0].vfs[0].pci.address.clone();
    host.set_in_use([vf0].into());
    let w0 = sriov_daemon::Host::writes(&host);
    let script = vec![
        (Method::GET, format!("{STATES}/{NODE}"), node_state(6, 2, "Idle")),
        (Method::PATCH, format!("/api/v1/nodes/{NODE}"), node()),
        (
            Method::PATCH,
            format!("{STATES}/{NODE}"),
            node_state(6, 2, "Idle"),
        ),
        (Method::PATCH, format!("/api/v1/nodes/{NODE}"), node()),
        (
            Method::PATCH,
            format!("{STATES}/{NODE}/status"),
            node_state(6, 2, "Idle"),
        ),
        // the drain controller has drained: DrainComplete
        (
            Method::GET,
            format!("{STATES}/{NODE}"),
            node_state(6, 2, "DrainComplete"),
        ),
        (
            Method::PATCH,
            format!("{STATES}/{NODE}/status"),
            node_state(6, 2, "DrainComplete"),
        ),
        (
            Method::PATCH,
            format!("{STATES}/{NODE}"),
            node_state(6, 2, "DrainComplete"),
        ),
        (Method::PATCH, format!("/api/v1/nodes/{NODE}"), node()),
        (
            Method::PATCH,
            format!("{STATES}/{NODE}/status"),
            node_state(6, 2, "DrainComplete"),
        ),
    ];
    let (client, seen) = mock(&rt, script);
    let mut b = KubeBackend::new(rt.handle().clone(), client, NS, NODE);
    let (first, _) = sync_once(&engine, &mut b).expect("api").expect("exists");
    assert_eq!(first.status.sync_status, "InProgress");
    assert_eq!(
        sriov_daemon::Host::writes(&host),
        w0,
        "nothing applied before the drain"
    );
    let (second, _) = sync_once(&engine, &mut b).expect("api").expect("exists");
    assert_eq!(
        second.status.sync_status, "Succeeded",
        "{}",
        second.status.last_sync_error
    );
    assert_eq!(host.devices().pfs[0].num_vfs, 6);
    std::thread::sleep(Duration::from_millis(100));
    let s = seen.lock().expect("lock");
    assert_eq!(s.len(), 10, "{:?}", paths(&seen));
    assert_eq!(
        s[2].2["metadata"]["annotations"]["sriovnetwork.openshift.io/desired-state"],
        "Drain_Required"
    );
    assert_eq!(
        s[3].2["metadata"]["annotations"]["sriovnetwork.openshift.io/state"],
        "Drain_Required"
    );
    assert_eq!(s[4].2["status"]["syncStatus"], "InProgress");
    assert!(
        s[4].2["status"]["lastSyncError"]
            .as_str()
            .unwrap_or_default()
            .contains("drain")
    );
    assert_eq!(s[6].2["status"]["syncStatus"], "InProgress");
    assert_eq!(
        s[7].2["metadata"]["annotations"]["sriovnetwork.openshift.io/desired-state"],
        "Idle"
    );
    assert_eq!(
        s[8].2["metadata"]["annotations"]["sriovnetwork.openshift.io/state"],
        "Idle"
    );
    assert_eq!(s[9].2["status"]["syncStatus"], "Succeeded");
}
