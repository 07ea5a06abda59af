//! The protobuf messages the kubelet sends the device plugin (deviceplugin v1beta1 and
//! pluginregistration v1), decoded with the plugin's prost types and, for Allocate and
//! GetPreferredAllocation, answered the way `server.rs` answers them from a fixture host's pools;
//! and the kubelet's PodResources `List` answer, which the meta plugin and `sriovctl` read, decoded
//! and flattened into the rows they use (`pod_resources::flatten`).
//!
//! First byte: which message (and which pool); the rest is the message.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sriov_device_plugin::allocate::{DevNodes, allocate};
use sriov_device_plugin::pod_resources::{PodDevices, flatten};
use sriov_device_plugin::pool::Pool;
use sriov_device_plugin::preferred::preferred;
use sriov_device_plugin::{pluginregistration as reg, podresources, v1beta1 as api};

fn pools() -> &'static (Vec<Pool>, Vec<String>) {
    static POOLS: OnceLock<(Vec<Pool>, Vec<String>)> = OnceLock::new();
    POOLS.get_or_init(sriov_fuzz::pool::pools)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, msg)) = data.split_first() else {
        return;
    };
    let (pools, _) = pools();
    let pool = &pools[usize::from(sel >> 4) % pools.len()];
    match sel % 8 {
        0 => {
            let Ok(req) = api::AllocateRequest::decode(msg) else {
                return;
            };
            for c in &req.container_requests {
                let nodes = DevNodes {
                    vhost_net: true,
                    tun: sel & 8 != 0,
                };
                match allocate(pool, &c.devices_ids, nodes) {
                    Ok(a) => {
                        // The kubelet gets every requested device's PCI address in the env.
                        let listed = a.envs.values().any(|v| *v == c.devices_ids.join(","));
                        assert!(listed, "allocated {:?} but env is {:?}", c.devices_ids, a.envs);
                    }
                    Err(e) => assert!(!e.to_string().is_empty()),
                }
            }
        }
        1 => {
            let Ok(req) = api::PreferredAllocationRequest::decode(msg) else {
                return;
            };
            for c in &req.container_requests {
                let size = usize::try_from(c.allocation_size).unwrap_or(0);
                let ids = preferred(pool, &c.available_device_i_ds, &c.must_include_device_i_ds, size);
                for id in &c.must_include_device_i_ds {
                    assert!(ids.contains(id), "must-include {id:?} left out of {ids:?}");
                }
            }
        }
        2 => {
            let _ = api::PreStartContainerRequest::decode(msg);
        }
        3 => {
            let _ = api::Empty::decode(msg);
        }
        4 => {
            let _ = api::RegisterRequest::decode(msg);
        }
        5 => {
            let _ = reg::InfoRequest::decode(msg);
        }
        6 => {
            let _ = reg::RegistrationStatus::decode(msg);
        }
        _ if sel & 8 == 0 => {
            let _ = api::ListAndWatchResponse::decode(msg);
        }
        _ => {
            let Ok(resp) = podresources::ListPodResourcesResponse::decode(msg) else {
                return;
            };
            let rows = flatten(&resp, None);
            // Sorted, unique keys; every row holds devices, sorted and without duplicates.
            for pair in rows.windows(2) {
                let key = |r: &PodDevices| (r.namespace.clone(), r.pod.clone(), r.container.clone(), r.resource.clone());
                assert!(key(&pair[0]) < key(&pair[1]), "rows out of order: {rows:?}");
            }
            for r in &rows {
                assert!(!r.devices.is_empty(), "row without devices: {r:?}");
                assert!(r.devices.windows(2).all(|w| w[0] < w[1]), "devices not sorted/unique: {r:?}");
            }
            // One resource's rows are exactly those rows.
            if let Some(first) = rows.first() {
                let only = flatten(&resp, Some(&first.resource));
                let expected: Vec<_> = rows.iter().filter(|r| r.resource == first.resource).cloned().collect();
                assert_eq!(only, expected);
            }
        }
    }
});
