//! `sriovctl`: the SR-IOV admin's CLI.
fn main() -> anyhow::Result<()> {
    anyhow::bail!("no subcommand implemented yet")
}
