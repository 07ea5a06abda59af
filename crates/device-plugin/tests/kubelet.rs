//! sriovdp against a fake kubelet speaking the real v1beta1 protocol over unix sockets, on a fake
//! sysfs (the lab's igb shape: PF 0000:01:00.0 `eth0`, 4 VFs on igbvf, VF3 moved to vfio-pci).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{FakeKubelet, eventually, plugin};
use sriov_device_plugin::health::SysfsLinks;
use sriov_device_plugin::manager::{self, Options};
use sriov_device_plugin::v1beta1 as api;
use sriov_host::fixture::{Fixture, FixtureHost, scratch_base};
use tokio::sync::oneshot;
use tokio_stream::StreamExt;

const CONFIG: &str = r#"{"resourceList":[
  {"resourceName":"igb_vfio","selectors":[{"drivers":["vfio-pci"]}],
   "additionalInfo":{"*":{"token":"all"},"0000:01:10.6":{"token":"vf3"}}},
  {"resourceName":"igb_netdev","resourcePrefix":"example.com","selectors":[{"vendors":["8086"],"devices":["10ca"],"drivers":["igbvf"]}]}
]}"#;

struct Env {
    _tmp: tempfile::TempDir,
    fx: Fixture,
    plugin_dir: PathBuf,
    config: PathBuf,
    devinfo: PathBuf,
    opts: Options,
}

fn env(config: &str) -> Env {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let mut fx = FixtureHost::new(tmp.path().join("host"))
        .igb_82576(4)
        .build()
        .expect("fixture");
    fx.bind_driver("0000:01:10.6", "vfio-pci").expect("vfio bind");
    fx.write_attr("0000:01:00.0", "numa_node", "0").expect("numa");
    fx.set_admin_up("eth0", true).expect("pf up");
    fx.set_oper_state("eth0", "up").expect("pf carrier");
    let plugin_dir = tmp.path().join("device-plugins");
    std::fs::create_dir_all(&plugin_dir).expect("mkdir");
    let config_path = tmp.path().join("config.json");
    std::fs::write(&config_path, config).expect("config");
    let devinfo = tmp.path().join("devinfo");
    let mut opts = Options::new(config_path.clone(), "intel.com".into());
    opts.sysfs = fx.root().clone();
    opts.plugin_dir = plugin_dir.clone();
    opts.plugins_registry = tmp.path().join("no-plugins-registry");
    opts.dev_root = fx.dev().to_path_buf();
    opts.device_info_dir = Some(devinfo.clone());
    opts.health_interval = Duration::from_millis(50);
    opts.config_check_interval = Duration::from_millis(50);
    Env {
        _tmp: tmp,
        fx,
        plugin_dir,
        config: config_path,
        devinfo,
        opts,
    }
}

fn spawn(
    e: &Env,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), manager::StartError>>,
) {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let links = Arc::new(SysfsLinks::polled(e.fx.sys()));
    let task = tokio::spawn(manager::run(e.opts.clone(), links, async {
        let _ = stop_rx.await;
    }));
    (stop_tx, task)
}

fn by_name(regs: Vec<api::RegisterRequest>) -> HashMap<String, api::RegisterRequest> {
    regs.into_iter().map(|r| (r.resource_name.clone(), r)).collect()
}

fn summary(r: &api::ListAndWatchResponse) -> Vec<(String, String, Option<i64>)> {
    r.devices
        .iter()
        .map(|d| {
            (
                d.id.clone(),
                d.health.clone(),
                d.topology.as_ref().and_then(|t| t.nodes.first()).map(|n| n.id),
            )
        })
        .collect()
}

async fn next_msg(s: &mut tonic::Streaming<api::ListAndWatchResponse>) -> api::ListAndWatchResponse {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("a ListAndWatch message in time")
        .expect("stream open")
        .expect("ok")
}

fn sock(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plays_the_kubelet_protocol() {
    let e = env(CONFIG);
    let mut kubelet = FakeKubelet::start(&e.plugin_dir);
    let (stop, task) = spawn(&e);

    // Register: one per resource, right name / endpoint / options.
    let regs = by_name(vec![kubelet.next(5).await, kubelet.next(5).await]);
    let vfio = &regs["intel.com/igb_vfio"];
    assert_eq!(
        (vfio.version.as_str(), vfio.endpoint.as_str()),
        ("v1beta1", "intel.com_igb_vfio.sock")
    );
    let opts = vfio.options.expect("options");
    assert!(opts.get_preferred_allocation_available && !opts.pre_start_required);
    assert_eq!(
        regs["example.com/igb_netdev"].endpoint,
        "example.com_igb_netdev.sock"
    );

    let mut netdev = plugin(&sock(&e.plugin_dir, "example.com_igb_netdev.sock")).await;
    let mut vfio_c = plugin(&sock(&e.plugin_dir, "intel.com_igb_vfio.sock")).await;
    let o = netdev
        .get_device_plugin_options(api::Empty {})
        .await
        .expect("options")
        .into_inner();
    assert!(o.get_preferred_allocation_available);

    // ListAndWatch: the fixture's devices with health and NUMA topology.
    let mut stream = netdev
        .list_and_watch(api::Empty {})
        .await
        .expect("law")
        .into_inner();
    let healthy = |id: &str, h: &str| (id.to_string(), h.to_string(), Some(0));
    assert_eq!(
        summary(&next_msg(&mut stream).await),
        vec![
            healthy("0000:01:10.0", "Healthy"),
            healthy("0000:01:10.2", "Healthy"),
            healthy("0000:01:10.4", "Healthy")
        ]
    );
    let mut vstream = vfio_c
        .list_and_watch(api::Empty {})
        .await
        .expect("law")
        .into_inner();
    assert_eq!(
        summary(&next_msg(&mut vstream).await),
        vec![healthy("0000:01:10.6", "Healthy")]
    );

    // The PF link goes down → every VF Unhealthy in the stream; back up → Healthy.
    e.fx.set_oper_state("eth0", "down").expect("link down");
    let m = next_msg(&mut stream).await;
    assert!(
        m.devices.iter().all(|d| d.health == "Unhealthy"),
        "{:?}",
        summary(&m)
    );
    assert_eq!(m.devices.len(), 3);
    e.fx.set_oper_state("eth0", "up").expect("link up");
    assert!(
        next_msg(&mut stream)
            .await
            .devices
            .iter()
            .all(|d| d.health == "Healthy")
    );

    // Allocate: the exact env / spec / mount set.
    let alloc = |ids: &[&str]| api::AllocateRequest {
        container_requests: vec![api::ContainerAllocateRequest {
            devices_ids: ids.iter().map(|s| s.to_string()).collect(),
        }],
    };
    let r = vfio_c
        .allocate(alloc(&["0000:01:10.6"]))
        .await
        .expect("allocate vfio")
        .into_inner();
    let c = &r.container_responses[0];
    let envs: Vec<(&str, &str)> = {
        let mut v: Vec<_> = c.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        v.sort();
        v
    };
    assert_eq!(
        envs,
        vec![
            ("PCIDEVICE_INTEL_COM_IGB_VFIO", "0000:01:10.6"),
            (
                "PCIDEVICE_INTEL_COM_IGB_VFIO_INFO",
                r#"{"0000:01:10.6":{"extra":{"token":"vf3"},"extraInfo":{"token":"vf3"},"generic":{"deviceID":"0000:01:10.6"},"vfio":{"dev-mount":"/dev/vfio/10","mount":"/dev/vfio/vfio","vfio-dev-mount":"/dev/vfio/10","vfio-mount":"/dev/vfio/vfio"}}}"#
            ),
        ]
    );
    let specs: Vec<(&str, &str, &str)> = c
        .devices
        .iter()
        .map(|d| {
            (
                d.container_path.as_str(),
                d.host_path.as_str(),
                d.permissions.as_str(),
            )
        })
        .collect();
    assert_eq!(
        specs,
        vec![
            ("/dev/vfio/vfio", "/dev/vfio/vfio", "rw"),
            ("/dev/vfio/10", "/dev/vfio/10", "rw")
        ]
    );
    assert!(c.mounts.is_empty() && c.annotations.is_empty());

    let r = netdev
        .allocate(alloc(&["0000:01:10.4", "0000:01:10.0"]))
        .await
        .expect("allocate netdev")
        .into_inner();
    let c = &r.container_responses[0];
    assert_eq!(
        c.envs["PCIDEVICE_EXAMPLE_COM_IGB_NETDEV"],
        "0000:01:10.4,0000:01:10.0"
    );
    assert_eq!(
        c.envs["PCIDEVICE_EXAMPLE_COM_IGB_NETDEV_INFO"],
        r#"{"0000:01:10.0":{"generic":{"deviceID":"0000:01:10.0"}},"0000:01:10.4":{"generic":{"deviceID":"0000:01:10.4"}}}"#
    );
    assert!(c.devices.is_empty() && c.mounts.is_empty());
    let info = std::fs::read_to_string(e.devinfo.join("example.com-igb_netdev-0000:01:10.4-device.json"))
        .expect("device-info file");
    assert_eq!(
        info,
        r#"{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:01:10.4"}}"#
    );
    let err = netdev
        .allocate(alloc(&["0000:01:10.6"]))
        .await
        .expect_err("not in this pool");
    assert!(
        err.message().contains("example.com/igb_netdev") && err.message().contains("0000:01:10.6"),
        "{err}"
    );

    // GetPreferredAllocation: answers within the available set.
    let pr = netdev
        .get_preferred_allocation(api::PreferredAllocationRequest {
            container_requests: vec![api::ContainerPreferredAllocationRequest {
                available_device_i_ds: vec![
                    "0000:01:10.2".into(),
                    "0000:01:10.0".into(),
                    "0000:01:10.4".into(),
                ],
                must_include_device_i_ds: vec!["0000:01:10.4".into()],
                allocation_size: 2,
            }],
        })
        .await
        .expect("preferred")
        .into_inner();
    assert_eq!(
        pr.container_responses[0].device_i_ds,
        ["0000:01:10.4", "0000:01:10.0"]
    );
    netdev
        .pre_start_container(api::PreStartContainerRequest { devices_ids: vec![] })
        .await
        .expect("prestart");

    // Kubelet restart: it wipes the directory and serves a new kubelet.sock → re-registered < 1 s.
    kubelet.stop().await;
    for f in std::fs::read_dir(&e.plugin_dir).expect("ls").flatten() {
        std::fs::remove_file(f.path()).expect("wipe");
    }
    let t0 = Instant::now();
    let mut kubelet = FakeKubelet::start(&e.plugin_dir);
    let regs = by_name(vec![kubelet.next(2).await, kubelet.next(2).await]);
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(1), "re-registration took {took:?}");
    eprintln!("kubelet restart → both resources re-registered in {took:?}");
    assert!(regs.contains_key("intel.com/igb_vfio") && regs.contains_key("example.com/igb_netdev"));
    let mut netdev = plugin(&sock(&e.plugin_dir, "example.com_igb_netdev.sock")).await;
    let mut stream = netdev
        .list_and_watch(api::Empty {})
        .await
        .expect("law")
        .into_inner();
    assert_eq!(next_msg(&mut stream).await.devices.len(), 3);

    // kubelet.sock recreated while our sockets survive → registered again too.
    kubelet.stop().await;
    let mut kubelet = FakeKubelet::start(&e.plugin_dir);
    let _ = by_name(vec![kubelet.next(2).await, kubelet.next(2).await]);

    // Config change → pools rebuilt: igb_netdev keeps only VF0-1 (stream re-sent), a new resource
    // takes VF2 and registers, igb_vfio is gone.
    let new = r#"{"resourceList":[
      {"resourceName":"igb_netdev","resourcePrefix":"example.com","selectors":[{"pfNames":["eth0#0-1"],"drivers":["igbvf"]}]},
      {"resourceName":"igb_vf2","selectors":{"rootDevices":["0000:01:00.0#2"]}}]}"#;
    std::fs::write(&e.config, new).expect("rewrite config");
    let m = next_msg(&mut stream).await;
    assert_eq!(
        summary(&m),
        vec![
            healthy("0000:01:10.0", "Healthy"),
            healthy("0000:01:10.2", "Healthy")
        ]
    );
    let reg = kubelet.next(5).await;
    assert_eq!(
        (reg.resource_name.as_str(), reg.endpoint.as_str()),
        ("intel.com/igb_vf2", "intel.com_igb_vf2.sock")
    );
    assert!(
        eventually(2, || !e.plugin_dir.join("intel.com_igb_vfio.sock").exists()).await,
        "removed resource's socket gone"
    );

    // A broken config is refused and the running pools stay.
    std::fs::write(
        &e.config,
        r#"{"resourceList":[{"resourceName":"x","selectors":[{"pfNames":["eth0#7-2"]}]}]}"#,
    )
    .expect("w");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        e.plugin_dir.join("intel.com_igb_vf2.sock").exists()
            && e.plugin_dir.join("example.com_igb_netdev.sock").exists()
    );

    // Clean shutdown removes our sockets and device-info files; kubelet.sock is not ours.
    stop.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops in time")
        .expect("join")
        .expect("run ok");
    let left: Vec<String> = std::fs::read_dir(&e.plugin_dir)
        .expect("ls")
        .flatten()
        .map(|f| f.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["kubelet.sock"]);
    assert_eq!(std::fs::read_dir(&e.devinfo).expect("ls").count(), 0);
    kubelet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_is_retried() {
    // Upstream exits fatally when Register fails; sriovdp keeps serving and retries after 1 s.
    let e = env(r#"{"resourceList":[{"resourceName":"vf","selectors":{}}]}"#);
    let mut kubelet = FakeKubelet::try_start_refusing(&e.plugin_dir, 1).expect("kubelet");
    let (stop, task) = spawn(&e);
    let first = kubelet.next(5).await;
    let t = Instant::now();
    let second = kubelet.next(5).await;
    let gap = t.elapsed();
    assert_eq!(
        (first.resource_name.as_str(), second.resource_name.as_str()),
        ("intel.com/vf", "intel.com/vf")
    );
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_secs(3),
        "retried after {gap:?}"
    );
    assert!(
        kubelet.next_within(Duration::from_millis(1500)).await.is_none(),
        "no more attempts once registered"
    );
    stop.send(()).expect("stop");
    task.await.expect("join").expect("ok");
    kubelet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediscovery_follows_vfs_created_and_removed() {
    // Upstream discovers once; sriovdp re-discovers and pushes changed pools.
    let mut e = env(r#"{"resourceList":[{"resourceName":"vf","selectors":{"drivers":["igbvf"]}}]}"#);
    e.opts.rediscover_interval = Some(Duration::from_millis(100));
    let mut kubelet = FakeKubelet::start(&e.plugin_dir);
    let (stop, task) = spawn(&e);
    kubelet.next(5).await;
    let mut c = plugin(&sock(&e.plugin_dir, "intel.com_vf.sock")).await;
    let mut s = c.list_and_watch(api::Empty {}).await.expect("law").into_inner();
    assert_eq!(next_msg(&mut s).await.devices.len(), 3);
    e.fx.set_num_vfs("0000:01:00.0", 0).expect("0 VFs");
    e.fx.set_num_vfs("0000:01:00.0", 6).expect("6 VFs");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let m = next_msg(&mut s).await;
        ids = m.devices.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
        if ids.len() == 6 {
            break;
        }
    }
    assert_eq!(
        ids,
        [
            "0000:01:10.0",
            "0000:01:10.2",
            "0000:01:10.4",
            "0000:01:10.6",
            "0000:01:11.0",
            "0000:01:11.2"
        ]
    );
    stop.send(()).expect("stop");
    task.await.expect("join").expect("ok");
    kubelet.stop().await;
}
