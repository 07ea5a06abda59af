//! Kubernetes mode (being built).

use std::time::Duration;

use crate::engine::Engine;

/// Runs the Kubernetes mode for node `node` in `namespace`.
pub fn run(_engine: &Engine<'_>, node: &str, namespace: &str, _resync: Duration) -> anyhow::Result<()> {
    anyhow::bail!("Kubernetes mode for node {node} in {namespace} is not built yet; use --node-state-file")
}
