//! `sriovctl`: the SR-IOV admin's CLI. One module per subcommand.

mod admission;
mod discover;
mod explain;
mod plan;
mod pod_resources;
mod render;
mod render_diff;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sriov_operator::admission::Hook;

#[derive(Parser, Debug)]
#[command(name = "sriovctl", version, about = "The SR-IOV admin's CLI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The node's SR-IOV hardware from sysfs: PFs, their VFs, drivers, netdevs, IOMMU groups.
    Discover(discover::DiscoverArgs),
    /// Print what the operator would write (node states, device-plugin config, NADs) for the
    /// given manifests, without a cluster.
    Render(render::RenderArgs),
    /// Run the operator's validating webhook on an AdmissionReview (or a bare object).
    Validate(admission::AdmissionArgs),
    /// Run the operator's mutating webhook on an AdmissionReview (or a bare object).
    Mutate(admission::AdmissionArgs),
    /// Which device-plugin pool takes each device, or why none does.
    Explain(explain::ExplainArgs),
    /// What the config daemon would do for a SriovNetworkNodeState spec on this node, and
    /// whether it needs a drain or a reboot.
    Plan(plan::PlanArgs),
    /// Which pod holds which device, from the kubelet's PodResources API (what Kuryr and Multus
    /// read).
    PodResources(pod_resources::PodResourcesArgs),
    /// The cluster's SR-IOV state: nodes, PFs, VFs per pool and the pods holding them.
    Status(status::StatusArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Discover(args) => discover::run(&args),
        Command::Render(args) => render::run(&args),
        Command::Validate(args) => admission::run(Hook::Validate, &args),
        Command::Mutate(args) => admission::run(Hook::Mutate, &args),
        Command::Explain(args) => explain::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::PodResources(args) => pod_resources::run(&args),
        Command::Status(args) => status::run(&args),
    }
}
