//! `sriovctl plan -f NODESTATE`: what the config daemon would do on this node for that
//! `SriovNetworkNodeState` spec (ordered actions) and what it means for workloads (the verdict:
//! nothing to do / apply without drain / drain first, naming PFs and reasons / reboot needed).
//! Reads the host (sysfs root as a parameter), or with `--from-status` the file's own
//! `status.interfaces`, so it runs away from the node too. Never writes anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use sriov_daemon::file_mode::read_doc;
use sriov_daemon::from_status::host_from_status;
use sriov_daemon::{Host, Plan, PlanContext, plan};
use sriov_host::SysfsRoot;

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The SriovNetworkNodeState (YAML or JSON) whose spec to plan.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    file: PathBuf,
    /// The sysfs root to read the host from.
    #[arg(long, value_name = "DIR", env = sriov_host::SYSFS_ROOT_ENV, default_value = "/sys")]
    sysfs_root: PathBuf,
    /// Plan against the file's `status.interfaces` instead of this host's sysfs.
    #[arg(long)]
    from_status: bool,
    /// `text` or `json`.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

pub fn run(args: &PlanArgs) -> ExitCode {
    match plan_file(args) {
        Ok(p) => {
            match args.output {
                Output::Json => match serde_json::to_string_pretty(&p) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("sriovctl plan: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                Output::Text => print!("{}", text(&p)),
            }
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("sriovctl plan: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn plan_file(args: &PlanArgs) -> Result<Plan, String> {
    let doc = read_doc(&args.file).map_err(|e| e.to_string())?;
    let (devices, ctx) = if args.from_status {
        let interfaces = doc
            .status
            .as_ref()
            .map(|s| s.interfaces.clone())
            .unwrap_or_default();
        (
            host_from_status(&interfaces),
            PlanContext {
                iommu_enabled: true,
                ..PlanContext::default()
            },
        )
    } else {
        let host = sriov_daemon::node_host(SysfsRoot::from_arg(&args.sysfs_root));
        let devices = host.discover().map_err(|e| e.to_string())?;
        let ctx = host.context(&devices);
        (devices, ctx)
    };
    plan(&doc.spec, &devices, &ctx).map_err(|errs| {
        let lines: Vec<String> = errs.iter().map(|e| format!("  {e}")).collect();
        format!(
            "{}: invalid spec, the daemon would apply nothing:\n{}",
            args.file.display(),
            lines.join("\n")
        )
    })
}

fn text(p: &Plan) -> String {
    let mut out = String::new();
    if p.actions.is_empty() {
        out.push_str("no actions\n");
    }
    for a in &p.actions {
        out.push_str(&format!("  {a}\n"));
    }
    for n in &p.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&format!("verdict: {}\n", p.verdict));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sriov_host::fixture::{FixtureHost, scratch_base};
    use std::path::Path;

    fn spec(num_vfs: u32, status: &str) -> String {
        format!(
            "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodeState\nmetadata: {{name: n}}\nspec:\n  interfaces:\n  - pciAddress: \"0000:01:00.0\"\n    numVfs: {num_vfs}\n    vfGroups:\n    - {{resourceName: a, deviceType: netdevice, vfRange: \"0-2\"}}\n    - {{resourceName: b, deviceType: vfio-pci, vfRange: \"3-3\"}}\n{status}"
        )
    }

    fn args(file: PathBuf, sys: &Path, from_status: bool) -> PlanArgs {
        PlanArgs {
            file,
            sysfs_root: sys.to_path_buf(),
            from_status,
            output: Output::Text,
        }
    }

    #[test]
    fn plan_on_a_fixture_host_and_from_status() {
        let tmp = tempfile::tempdir_in(scratch_base()).expect("tmp");
        let fx = FixtureHost::new(tmp.path().join("h"))
            .igb_82576(4)
            .build()
            .expect("fixture");
        let f = tmp.path().join("ns.yaml");
        std::fs::write(&f, spec(6, "")).expect("write");
        let p = plan_file(&args(f.clone(), fx.sys(), false)).expect("plan");
        let t = text(&p);
        assert!(
            t.contains("0000:01:00.0: numVfs 4 -> 0 -> 6 (re-create VFs)"),
            "{t}"
        );
        assert!(t.contains("VF 3 driver none -> vfio-pci"), "{t}");
        assert!(t.ends_with("verdict: apply without drain\n"), "{t}");

        // Away from the node: the file's own status is the host (4 VFs, VF 3 on vfio-pci).
        let status = "status:\n  interfaces:\n  - pciAddress: \"0000:01:00.0\"\n    name: eth0\n    numVfs: 4\n    totalvfs: 7\n    Vfs:\n    - {pciAddress: \"0000:01:10.0\", vfID: 0, driver: igbvf, name: eth1}\n    - {pciAddress: \"0000:01:10.2\", vfID: 1, driver: igbvf, name: eth2}\n    - {pciAddress: \"0000:01:10.4\", vfID: 2, driver: igbvf, name: eth3}\n    - {pciAddress: \"0000:01:10.6\", vfID: 3, driver: vfio-pci}\n";
        std::fs::write(&f, spec(4, status)).expect("write");
        let p = plan_file(&args(f.clone(), Path::new("/nonexistent"), true)).expect("plan");
        assert_eq!(text(&p), "no actions\nverdict: nothing to do\n");

        std::fs::write(&f, spec(8, status)).expect("write");
        let e = plan_file(&args(f, Path::new("/nonexistent"), true)).expect_err("invalid");
        assert!(
            e.contains("0000:01:00.0") && e.contains("numVfs 8") && e.contains("sriov_totalvfs 7"),
            "{e}"
        );
    }
}
