//! `sriovctl explain --config FILE [--sysfs-root DIR]`: which device-plugin pool takes each
//! device, or why none does (the first selector check that rejected it, per pool).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use sriov_device_plugin::config::{Config, DEFAULT_PREFIX};
use sriov_device_plugin::explain::{explain, render_text};
use sriov_device_plugin::manager::discover_devices;
use sriov_host::SysfsRoot;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The device plugin config file (upstream's format, e.g. /etc/pcidp/config.json).
    #[arg(long = "config", short = 'c')]
    config: PathBuf,
    /// sysfs root to discover (default /sys).
    #[arg(long = "sysfs-root", env = sriov_host::SYSFS_ROOT_ENV, default_value = "/sys")]
    sysfs_root: PathBuf,
    /// Prefix for resources without `resourcePrefix` (sriovdp's --resource-prefix).
    #[arg(long = "resource-prefix", default_value = DEFAULT_PREFIX)]
    resource_prefix: String,
    #[arg(long = "output", short = 'o', value_enum, default_value = "text")]
    output: Format,
}

pub fn run(args: &ExplainArgs) -> ExitCode {
    match try_run(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sriovctl explain: {e}");
            ExitCode::FAILURE
        }
    }
}

fn try_run(args: &ExplainArgs) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", args.config.display()))?;
    let config = Config::parse(&text, &args.resource_prefix)
        .map_err(|e| anyhow::anyhow!("config file {}: {e}", args.config.display()))?;
    let devices = discover_devices(&SysfsRoot::from_arg(&args.sysfs_root), &config)?;
    let e = explain(&config, &devices);
    Ok(match args.output {
        Format::Text => render_text(&e),
        Format::Json => serde_json::to_string_pretty(&e)? + "\n",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sriov_host::fixture::{FixtureHost, scratch_base};

    #[test]
    fn explains_a_zero_count_resource_on_the_lab_shape() {
        let tmp = tempfile::tempdir_in(scratch_base()).expect("tempdir");
        let fx = FixtureHost::new(tmp.path().join("host"))
            .igb_82576(2)
            .build()
            .expect("fixture");
        let config = tmp.path().join("config.json");
        std::fs::write(&config, r#"{"resourceList":[{"resourceName":"dpdk","selectors":{"drivers":["vfio-pci"]}},{"resourceName":"vf","selectors":{"devices":["10ca"]}}]}"#)
            .expect("write");
        let args = |output| ExplainArgs {
            config: config.clone(),
            sysfs_root: fx.sys().to_path_buf(),
            resource_prefix: DEFAULT_PREFIX.into(),
            output,
        };
        let text = try_run(&args(Format::Text)).expect("explains");
        assert!(text.contains("intel.com/dpdk    0 devices"), "{text}");
        assert!(text.contains("0000:01:10.0  → intel.com/vf"), "{text}");
        assert!(
            text.contains("intel.com/dpdk: selectors[0]: drivers: igbvf not in [vfio-pci]"),
            "{text}"
        );
        assert!(text.contains("0000:01:00.0  → no pool"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&try_run(&args(Format::Json)).expect("json")).expect("valid json");
        assert_eq!(
            json["pools"][1]["devices"],
            serde_json::json!(["0000:01:10.0", "0000:01:10.2"])
        );
        let bad = ExplainArgs {
            config: tmp.path().join("missing.json"),
            ..args(Format::Text)
        };
        assert!(try_run(&bad).is_err_and(|e| e.to_string().contains("missing.json")));
    }
}
