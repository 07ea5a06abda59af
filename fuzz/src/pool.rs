//! The device plugin's pools on a fixture host, built the way sriovdp builds them (discovery,
//! extra sysfs facts, selectors), for the targets that feed kubelet requests to them.

use sriov_device_plugin::config::Config;
use sriov_device_plugin::manager::discover_devices;
use sriov_device_plugin::pool::{HostFacts, Pool, build_pools};
use sriov_host::fixture::FixtureHost;

/// Two resources: the igb VFs (netdevice, vhost) and the ConnectX InfiniBand VFs (RDMA).
const CONFIG: &str = r#"{"resourceList": [
  {"resourceName": "igb_vfs", "selectors": {"vendors": ["8086"], "devices": ["10ca"], "needVhostNet": true}},
  {"resourceName": "ib_vfs", "resourcePrefix": "mellanox.com",
   "selectors": {"vendors": ["15b3"], "devices": ["1018"], "isRdma": true}}
]}"#;

/// The pools, and the IDs of every device in them (what a kubelet would ask for).
pub fn pools() -> (Vec<Pool>, Vec<String>) {
    let dir = crate::scratch_dir("pool");
    let fixture = FixtureHost::new(&dir)
        .igb_82576(3)
        .mlx_ib_pf(2)
        .build()
        .expect("build the fixture tree");
    let config = Config::parse(CONFIG, "intel.com").expect("the pool config parses");
    let devices = discover_devices(fixture.root(), &config).expect("discover the fixture");
    let pools = build_pools(&config, &devices, HostFacts { vhost_net: true });
    let ids: Vec<String> = pools
        .iter()
        .flat_map(|p| &p.devices)
        .map(|d| d.device.id.clone())
        .collect();
    assert_eq!(ids.len(), 5, "3 igb VFs and 2 ConnectX VFs in the pools");
    let _ = std::fs::remove_dir_all(&dir);
    (pools, ids)
}
