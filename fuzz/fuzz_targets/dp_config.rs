//! The device plugin's config file (`/etc/pcidp/config.json`: `resourceList`, selectors, the
//! legacy form), as `Config::parse` reads it with the default `--resource-prefix`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sriov_device_plugin::config::Config;
use sriov_device_plugin::sysfs_extra::Needs;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(text, "intel.com") {
        assert!(!config.resources.is_empty(), "accepted a config with no resource");
        for r in &config.resources {
            let _ = (r.full_name(), r.socket_name());
        }
        let _ = Needs::of(&config);
    }
});
