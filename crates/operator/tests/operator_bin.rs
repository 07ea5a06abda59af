//! The `sriov-network-operator` binary as upstream's Deployment runs it, against the real
//! kube-apiserver (`sriov-testcluster`) with the project's CRDs: the mandatory environment, the
//! `default` SriovOperatorConfig, the probe and metrics endpoints, and leader election on the
//! Lease (one leader of two, takeover after `kill -9` within 15 s, hand-over on SIGTERM, exit
//! when the Lease is taken away). Also the Events helper, in-process, on the same cluster.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use sriov_api::SriovOperatorConfig;
use sriov_operator::controller::default_config::default_operator_config;
use sriov_operator::controller::events::{Events, REPORTING_CONTROLLER};
use sriov_operator::controller::leader::LEASE_NAME;
use sriov_testcluster::Cluster;

const BIN: &str = env!("CARGO_BIN_EXE_sriov-network-operator");

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One operator process; killed when dropped. Its stderr (the logs) goes to `log`.
struct Replica {
    child: Child,
    probes: u16,
    metrics: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Replica {
    fn start(cluster: &Cluster, namespace: &str, extra: &[&str]) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("operator.log");
        let (probes, metrics) = (free_port(), free_port());
        let child = Command::new(BIN)
            .arg(format!("--health-probe-bind-address=127.0.0.1:{probes}"))
            .arg(format!("--metrics-bind-address=127.0.0.1:{metrics}"))
            .args(extra)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("NAMESPACE", namespace)
            .env("RESOURCE_PREFIX", "openshift.io")
            .env("CLUSTER_TYPE", "kubernetes")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Replica {
            child,
            probes,
            metrics,
            log,
            _dir: dir,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), sig).unwrap();
    }

    /// `Some(leader gauge)` once /metrics answers.
    fn leader_gauge(&self) -> Option<i64> {
        let (status, _, body) = http_get(self.metrics, "/metrics")?;
        if status != 200 {
            return None;
        }
        body.lines()
            .find_map(|l| l.strip_prefix("sriov_operator_leader "))
            .and_then(|v| v.trim().parse().ok())
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn wait_log(&self, text: &str, limit: Duration) {
        let started = Instant::now();
        while !self.logs().contains(text) {
            assert!(
                started.elapsed() < limit,
                "no {text:?} in the logs after {limit:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1: (status, content-type, body), `None` when nothing listens.
fn http_get(port: u16, path: &str) -> Option<(u16, String, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Some((status, content_type, body.to_string()))
}

async fn prepared(cluster: &Cluster, namespace: &str) -> kube::Client {
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &sriov_api::crd::sriov_crds())
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("namespace {namespace}: {e}"),
    }
    client
}

async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(started.elapsed() < limit, "{what} not seen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn run_without_cluster(env: &[(&str, &str)], unset: &[&str]) -> (ExitStatus, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("--health-probe-bind-address=0")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST");
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    let out = cmd.output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn missing_or_empty_resource_prefix_exits_non_zero_naming_it() {
    for env in [vec![], vec![("RESOURCE_PREFIX", "")]] {
        let (status, stderr) = run_without_cluster(&env, &["RESOURCE_PREFIX"]);
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("RESOURCE_PREFIX environment variable can't be empty"),
            "{stderr}"
        );
    }
}

#[test]
fn an_unknown_cluster_type_or_bad_flag_exits_naming_it() {
    let (status, stderr) = run_without_cluster(&[("RESOURCE_PREFIX", "p"), ("CLUSTER_TYPE", "k3s")], &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("CLUSTER_TYPE \"k3s\""), "{stderr}");
    let out = Command::new(BIN)
        .arg("--metrics-bind-address=8080")
        .env("RESOURCE_PREFIX", "p")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--metrics-bind-address \"8080\""), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_the_default_config_serves_probes_and_metrics_and_stops_on_sigterm() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let client = prepared(cluster, "op-default").await;
    let configs: Api<SriovOperatorConfig> = Api::namespaced(client.clone(), "op-default");
    assert!(configs.get_opt("default").await.unwrap().is_none());

    // Go-style single-dash flags, as upstream's manifests may pass them.
    let mut op = Replica::start(cluster, "op-default", &["-zap-encoder=json"]);
    let created = wait_for("the default SriovOperatorConfig", Duration::from_secs(30), || {
        let configs = configs.clone();
        async move { configs.get_opt("default").await.unwrap() }
    })
    .await;
    // No Node in this cluster: not single-node, so drain stays enabled.
    assert_eq!(
        serde_json::to_value(&created.spec).unwrap(),
        // `false` is omitted, as upstream's `omitempty` fields are.
        serde_json::json!({"logLevel": 2, "configurationMode": "daemon"})
    );
    let managers: Vec<_> = created
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, vec!["sriov-network-operator"]);

    for path in ["/healthz", "/readyz"] {
        let (status, _, body) = http_get(op.probes, path).expect("probe server answers");
        assert_eq!((status, body.as_str()), (200, "ok"), "{path}");
    }
    assert_eq!(http_get(op.probes, "/metrics").map(|r| r.0), Some(404));
    let (status, content_type, body) = http_get(op.metrics, "/metrics").expect("metrics answer");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    // The other families appear with their first series (per controller, per node status).
    for line in [
        "# TYPE sriov_operator_leader gauge",
        "sriov_operator_leader 1",
        "# EOF",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} missing from:\n{body}");
    }
    // JSON logs: every line an object.
    op.wait_log("starting controllers", Duration::from_secs(10));
    for line in op.logs().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some() && v.get("fields").is_some(), "{line}");
    }

    op.signal(nix::sys::signal::Signal::SIGTERM);
    let status = op.wait_exit(Duration::from_secs(10)).expect("exits on SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", op.logs());

    // An existing config is left as it is: not rewritten, not even re-applied.
    let patch = serde_json::json!({"spec": {"logLevel": 0, "disableDrain": true}});
    let edited = configs
        .patch("default", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let op = Replica::start(cluster, "op-default", &[]);
    op.wait_log("starting controllers", Duration::from_secs(30));
    let after = configs.get("default").await.unwrap();
    assert_eq!(after.metadata.resource_version, edited.metadata.resource_version);
    drop(op);

    // One Node: a single-node cluster, where upstream disables drain.
    let nodes: Api<Node> = Api::all(client.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some("only-node".into()),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let client = prepared(cluster, "op-single").await;
    let single: Api<SriovOperatorConfig> = Api::namespaced(client, "op-single");
    let op = Replica::start(cluster, "op-single", &[]);
    let created = wait_for("the single-node default config", Duration::from_secs(30), || {
        let single = single.clone();
        async move { single.get_opt("default").await.unwrap() }
    })
    .await;
    drop(op);
    nodes.delete("only-node", &DeleteParams::default()).await.unwrap();
    assert!(created.spec.disable_drain, "{:?}", created.spec);
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE_NAME)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_another_takes_over_within_15s_of_kill_9() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let ns = "op-lease";
    let client = prepared(cluster, ns).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let mut replicas = vec![
        Replica::start(cluster, ns, &["--leader-elect"]),
        Replica::start(cluster, ns, &["--leader-elect=true"]),
    ];

    // Exactly one leads: the Lease names one holder, one gauge reads 1, the other 0.
    let first_holder = wait_for("a Lease holder", Duration::from_secs(30), || {
        let leases = leases.clone();
        async move { holder(&leases).await }
    })
    .await;
    let gauges = wait_for("both replicas' metrics", Duration::from_secs(30), || {
        let g: Vec<_> = replicas.iter().map(Replica::leader_gauge).collect();
        async move {
            g.iter()
                .all(|g| g.is_some())
                .then(|| g.into_iter().flatten().collect::<Vec<_>>())
        }
    })
    .await;
    assert_eq!(gauges.iter().sum::<i64>(), 1, "{gauges:?}");
    let leader = gauges.iter().position(|g| *g == 1).unwrap();
    let follower = 1 - leader;
    let configs: Api<SriovOperatorConfig> = Api::namespaced(client.clone(), ns);
    wait_for(
        "the default config, created by the leader",
        Duration::from_secs(10),
        || {
            let configs = configs.clone();
            async move { configs.get_opt("default").await.unwrap() }
        },
    )
    .await;
    // For three renewals, nothing changes hands.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(holder(&leases).await.as_deref(), Some(first_holder.as_str()));
        assert_eq!(replicas[follower].leader_gauge(), Some(0));
    }
    let follower_logs = replicas[follower].logs();
    assert!(
        follower_logs.contains("waiting for the leader's lease to expire"),
        "{follower_logs}"
    );
    let transitions = leases
        .get(LEASE_NAME)
        .await
        .unwrap()
        .spec
        .unwrap()
        .lease_transitions;

    // kill -9 the leader: no release, the follower must wait the lease out.
    replicas[leader].signal(nix::sys::signal::Signal::SIGKILL);
    let killed = Instant::now();
    let second_holder = wait_for("a new Lease holder", Duration::from_secs(30), || {
        let (leases, old) = (leases.clone(), first_holder.clone());
        async move { holder(&leases).await.filter(|h| *h != old) }
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!("takeover after kill -9: {:.2} s", takeover.as_secs_f64());
    assert!(takeover < Duration::from_secs(15), "takeover took {takeover:?}");
    let spec = leases.get(LEASE_NAME).await.unwrap().spec.unwrap();
    assert_eq!(spec.lease_transitions, transitions.map(|t| t + 1));
    wait_for("the new leader's gauge", Duration::from_secs(5), || {
        let g = replicas[follower].leader_gauge();
        async move { (g == Some(1)).then_some(()) }
    })
    .await;
    let new_leader = replicas.remove(follower);
    drop(replicas);

    // A clean stop hands over at once: the Lease is released, the next replica need not wait.
    let third = Replica::start(cluster, ns, &["--leader-elect"]);
    third.wait_log(
        "waiting for the leader's lease to expire",
        Duration::from_secs(30),
    );
    let mut new_leader = new_leader;
    new_leader.signal(nix::sys::signal::Signal::SIGTERM);
    let stopped = Instant::now();
    let status = new_leader
        .wait_exit(Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", new_leader.logs());
    let third_holder = wait_for("the third replica leading", Duration::from_secs(15), || {
        let (leases, old) = (leases.clone(), second_holder.clone());
        async move { holder(&leases).await.filter(|h| *h != old) }
    })
    .await;
    let handover = stopped.elapsed();
    eprintln!("hand-over after SIGTERM: {:.2} s", handover.as_secs_f64());
    assert!(handover < Duration::from_secs(5), "hand-over took {handover:?}");

    // The Lease taken away (another holder renewing it): the leader stops and exits non-zero.
    let mut third = third;
    let mut lease = leases.get(LEASE_NAME).await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(third_holder.as_str()));
    spec.holder_identity = Some("intruder".into());
    spec.lease_duration_seconds = Some(3600);
    leases
        .replace(LEASE_NAME, &PostParams::default(), &lease)
        .await
        .unwrap();
    let status = third
        .wait_exit(Duration::from_secs(15))
        .expect("the deposed leader exits");
    assert_eq!(status.code(), Some(1), "{}", third.logs());
    assert!(third.logs().contains("leader election lost"), "{}", third.logs());
    assert!(third.logs().contains("intruder"), "{}", third.logs());
}

/// A TCP forwarder on 127.0.0.1 to the API server that can be cut, as a network partition
/// between the leader and the API server (the API server itself keeps serving the others).
struct Partitionable {
    port: u16,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Partitionable {
    async fn start(target: std::net::SocketAddr) -> Partitionable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let registry = tasks.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(acceptor);
        Partitionable { port, tasks }
    }

    /// Stops accepting and drops every forwarded connection.
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_leading_before_its_lease_expires() {
    use sriov_operator::controller::leader::{HoldEnd, LeaderElector, LeaseConfig};
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let ns = "op-partition";
    let client = prepared(cluster, ns).await;
    let api_addr: std::net::SocketAddr = cluster.server().trim_start_matches("https://").parse().unwrap();
    let proxy = Partitionable::start(api_addr).await;
    let mut config = cluster.config().clone();
    config.cluster_url = format!("https://127.0.0.1:{}", proxy.port).parse().unwrap();
    let through_proxy = kube::Client::try_from(config).unwrap();
    let lease = LeaseConfig {
        name: LEASE_NAME.into(),
        namespace: ns.into(),
        identity: "partitioned-leader".into(),
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(3),
        retry_period: Duration::from_secs(1),
    };
    let mut elector = LeaderElector::new(through_proxy, lease).unwrap();
    tokio::time::timeout(Duration::from_secs(10), elector.acquire())
        .await
        .expect("leads on an empty Lease");
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    assert_eq!(holder(&leases).await.as_deref(), Some("partitioned-leader"));

    let hold = tokio::spawn(async move {
        let end = elector.hold(std::future::pending()).await;
        (end, k8s_openapi::jiff::Timestamp::now())
    });
    // Let it renew twice, then cut it off.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.cut();
    let (end, ended_at) = tokio::time::timeout(Duration::from_secs(10), hold)
        .await
        .expect("hold() returns")
        .unwrap();
    let HoldEnd::Lost(reason) = end else {
        panic!("expected Lost, got {end:?}")
    };
    assert!(reason.contains("renew deadline"), "{reason}");
    // Nothing renewed after the cut: renewTime is its last renewal.
    let last_renew = leases
        .get(LEASE_NAME)
        .await
        .unwrap()
        .spec
        .unwrap()
        .renew_time
        .unwrap()
        .0;
    let led_on = ended_at.duration_since(last_renew).as_secs_f64();
    eprintln!(
        "partitioned leader stopped {led_on:.2} s after its last renewal (renew deadline 3 s, lease 4 s)"
    );
    // It stops at the renew deadline (3 s), so before the 4 s lease can expire for any other
    // candidate: the property that keeps two leaders from overlapping.
    assert!(led_on < 4.0, "{led_on}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_about_an_object_and_repeats_fold_into_a_series() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let ns = "op-events";
    let client = prepared(cluster, ns).await;
    let configs: Api<SriovOperatorConfig> = Api::namespaced(client.clone(), ns);
    let config = configs
        .create(&PostParams::default(), &default_operator_config(ns, false, false))
        .await
        .unwrap();
    let events = Events::with_instance(client.clone(), Some("replica-a".into()));
    for _ in 0..2 {
        events
            .normal(
                &config,
                "ConfigApplied",
                "Apply",
                "applied the default configuration",
            )
            .await;
    }
    let k8s_events: Api<K8sEvent> = Api::namespaced(client.clone(), ns);
    let mut listed = k8s_events.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let event = listed.remove(0);
    assert_eq!(event.reason.as_deref(), Some("ConfigApplied"));
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    assert_eq!(event.reporting_controller.as_deref(), Some(REPORTING_CONTROLLER));
    assert_eq!(event.reporting_instance.as_deref(), Some("replica-a"));
    assert_eq!(event.note.as_deref(), Some("applied the default configuration"));
    let regarding = event.regarding.unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("SriovOperatorConfig"));
    assert_eq!(regarding.name.as_deref(), Some("default"));
    assert_eq!(regarding.uid, config.metadata.uid);
    assert_eq!(event.series.map(|s| s.count), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_upstreams_rbac_events_are_written_to_the_core_api() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let ns = "op-events-rbac";
    let admin = prepared(cluster, ns).await;
    // Upstream's Helm Role: core `events` only (no `events.k8s.io`), plus what the test reads.
    let role = Role {
        metadata: ObjectMeta {
            name: Some("sriov-network-operator".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["events".into()]),
            verbs: vec!["*".into()],
            ..PolicyRule::default()
        }]),
    };
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("sriov-network-operator".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "sriov-network-operator".into(),
        },
        subjects: Some(vec![Subject {
            kind: "Group".into(),
            name: "sriov-operators".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            ..Subject::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let config = Api::<SriovOperatorConfig>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &default_operator_config(ns, false, false))
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("operator.kubeconfig");
    cluster
        .kubeconfig_for("sriov-operator", "sriov-operators", &kubeconfig)
        .unwrap();
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let restricted = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let events = Events::with_instance(restricted, Some("replica-b".into()));
    events
        .publish(
            &config,
            kube::runtime::events::EventType::Warning,
            "SyncFailed",
            "Sync",
            "could not render",
        )
        .await
        .expect("published through the core API");
    // The 403 on events.k8s.io switched it to the core API (both views share one storage).
    assert!(events.writes_core_events());
    let core: Vec<CoreEvent> = Api::<CoreEvent>::namespaced(admin, ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(core.len(), 1, "{core:?}");
    let event = &core[0];
    assert_eq!(event.reason.as_deref(), Some("SyncFailed"));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.message.as_deref(), Some("could not render"));
    assert_eq!(event.involved_object.kind.as_deref(), Some("SriovOperatorConfig"));
    assert_eq!(event.involved_object.uid, config.metadata.uid);
    assert_eq!(
        event.source.as_ref().and_then(|s| s.component.as_deref()),
        Some(REPORTING_CONTROLLER)
    );
}
