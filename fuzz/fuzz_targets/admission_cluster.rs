//! The cluster objects the webhook and `sriovctl validate` read from a file (`parse_objects` and
//! `Cluster::from_objects`: nodes, node states, policies, operator config, supported-nic-ids).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sriov_operator::admission::{Cluster, parse_objects};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(objects) = parse_objects(text) {
        let _ = Cluster::from_objects(&objects, "sriov-network-operator");
    }
});
