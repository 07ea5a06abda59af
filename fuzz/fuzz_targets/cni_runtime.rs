//! What the CNI plugin reads at run time besides its config: the `CNI_*` environment (one
//! `NAME=value` per line), `CNI_ARGS`, the cached VF state of a previous ADD (ours or upstream's
//! cache file) and the result an IPAM plugin prints.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sriov_cni::config::parse_cni_args;
use sriov_cni::env::CniEnv;
use sriov_cni::result::parse_ipam;
use sriov_cni::state::Cache;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        match CniEnv::from_env(|k| vars.get(k).map(|v| (*v).to_string())) {
            Ok(env) => {
                let _ = env.cache_key();
                if let Err(e) = parse_cni_args(&env.args) {
                    sriov_fuzz::assert_json(&e.to_json(sriov_fuzz::CNI_VERSION));
                }
            }
            Err(e) => sriov_fuzz::assert_json(&e.to_json(sriov_fuzz::CNI_VERSION)),
        }
        if let Ok(Some(mac)) = parse_cni_args(text) {
            assert!(!mac.is_zero(), "CNI_ARGS MAC: accepted the all-zero MAC");
        }
    }
    if let Some(cache) = Cache::from_json(data) {
        // A cache read back must write and read again to the same state (DEL relies on it).
        let again = Cache::from_json(&cache.to_json()).expect("our own cache file reads back");
        let fields = |c: &Cache| {
            (
                c.orig.vf_state(),
                c.device_id.clone(),
                c.mac.clone(),
                (c.mtu, c.vf_id, c.host_ifindex, c.dpdk),
                (c.master.clone(), c.netns.clone(), c.ifname.clone()),
            )
        };
        assert_eq!(fields(&again), fields(&cache), "cache round trip");
        let _ = (cache.applied_fields(), cache.effective_mac(), cache.ipam_type());
    }
    if let Err(e) = parse_ipam(data) {
        sriov_fuzz::assert_json(&e.to_json(sriov_fuzz::CNI_VERSION));
    }
});
