//! The CNI network configuration on stdin (`NetConf::parse`, with its `runtimeConfig`), as ADD
//! (deviceID required) and as DEL/CHECK/GC (deviceID optional) read it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sriov_cni::config::{NetConf, valid_id};

fuzz_target!(|data: &[u8]| {
    for need_device in [true, false] {
        match NetConf::parse(data, need_device) {
            Ok(conf) => {
                // What the parser promises to the commands that use it.
                assert!(valid_id(&conf.name), "accepted name {:?}", conf.name);
                assert!(
                    !need_device || conf.device_id.is_some(),
                    "ADD config without deviceID"
                );
                if let Some(mac) = conf.effective_mac(None) {
                    assert!(!mac.is_zero(), "accepted the all-zero MAC");
                }
                if let Some((min, max)) = conf.request.rate {
                    assert!(max == 0 || min <= max, "min_tx_rate {min} > max_tx_rate {max}");
                }
            }
            // The error is what the runtime reads on stdout: it must stay valid JSON.
            Err(e) => sriov_fuzz::assert_json(&e.to_json(sriov_fuzz::CNI_VERSION)),
        }
    }
});
