//! `sriovctl render --diff`: per node, how the rendered spec differs from the node state's
//! current spec, and what the config daemon would make of it on the node's reported hardware.
//!
//! Away from the node nobody knows which VFs pods hold, so the verdict is given twice: with the
//! node's VFs idle and with all of them in use. The gap between the two is exactly the drain
//! that depends on the workloads.

use std::collections::BTreeMap;

use serde_json::Value;
use sriov_api::NodeStateSpec;
use sriov_daemon::from_status::host_from_status;
use sriov_daemon::{PlanContext, plan};
use sriov_host::InterfaceExt;
use sriov_operator::render::diff_node_spec;

use crate::render::RenderCliError;

/// The text printed for `--diff`: one block per node that the render gives a state to.
pub fn diff_text(rendered: &[Value], current: &BTreeMap<String, Value>) -> Result<String, RenderCliError> {
    let mut out = String::new();
    for obj in rendered {
        if obj.get("kind").and_then(Value::as_str) != Some("SriovNetworkNodeState") {
            continue;
        }
        let node = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let desired = spec_of(&format!("rendered SriovNetworkNodeState/{node}"), obj.get("spec"))?;
        let (old, interfaces) = match current.get(node) {
            Some(cur) => (
                spec_of(&format!("SriovNetworkNodeState/{node}"), cur.get("spec"))?,
                interfaces_of(node, cur)?,
            ),
            None => (NodeStateSpec::default(), Vec::new()),
        };
        out.push_str(&format!("node {node}:\n"));
        let changes = diff_node_spec(&old, &desired);
        if changes.is_empty() {
            out.push_str("  spec unchanged\n");
        }
        for c in &changes {
            out.push_str(&format!("  {c}\n"));
        }
        out.push_str(&verdicts(&desired, &old, &interfaces));
    }
    if out.is_empty() {
        out.push_str("no node states rendered\n");
    }
    Ok(out)
}

fn spec_of(what: &str, spec: Option<&Value>) -> Result<NodeStateSpec, RenderCliError> {
    match spec {
        None | Some(Value::Null) => Ok(NodeStateSpec::default()),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| RenderCliError::Print(format!("{what}: spec: {e}")))
        }
    }
}

fn interfaces_of(node: &str, state: &Value) -> Result<Vec<InterfaceExt>, RenderCliError> {
    match state.pointer("/status/interfaces") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            RenderCliError::Print(format!("SriovNetworkNodeState/{node}: status.interfaces: {e}"))
        }),
    }
}

/// The daemon's verdict on the node's reported hardware, with its VFs idle and all in use. As in
/// the daemon's Kubernetes mode, only PFs of the current spec are reset when they leave it.
fn verdicts(desired: &NodeStateSpec, current: &NodeStateSpec, interfaces: &[InterfaceExt]) -> String {
    if interfaces.is_empty() {
        return "  daemon: the node reported no interfaces; no verdict\n".to_string();
    }
    let host = host_from_status(interfaces);
    let idle = PlanContext {
        iommu_enabled: true,
        reset_only: Some(
            current
                .interfaces
                .iter()
                .filter_map(|i| i.pci_address.parse().ok())
                .collect(),
        ),
        ..PlanContext::default()
    };
    let busy = PlanContext {
        vfs_in_use: host
            .pfs
            .iter()
            .flat_map(|p| p.vfs.iter().map(|v| v.pci.address.clone()))
            .collect(),
        ..idle.clone()
    };
    match (plan(desired, &host, &idle), plan(desired, &host, &busy)) {
        (Ok(a), Ok(b)) if a.verdict == b.verdict => format!("  daemon: {}\n", a.verdict),
        (Ok(a), Ok(b)) => format!(
            "  daemon, VFs idle: {}\n  daemon, VFs in use: {}\n",
            a.verdict, b.verdict
        ),
        (Err(errs), _) | (_, Err(errs)) => {
            let mut s = "  daemon: the spec would fail on this node:\n".to_string();
            for e in errs {
                s.push_str(&format!("    {e}\n"));
            }
            s
        }
    }
}
