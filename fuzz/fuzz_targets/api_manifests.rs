//! User manifests (YAML or JSON, one or many documents) of every kind sriov-api reads:
//! SriovNetworkNodeState, SriovNetworkNodePolicy, SriovNetwork, ..., NADs, Nodes, ConfigMaps,
//! through `parse_documents` (syntax, kind, CRD schema check with defaults).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sriov_api::parse::parse_documents;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(objects) = parse_documents(text) {
        for o in &objects {
            let _ = o.kind();
        }
    }
});
