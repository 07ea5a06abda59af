//! `sriovctl discover`: the node's SR-IOV hardware, as a table or in the node-state status shape.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use sriov_host::{HostDevices, NetDevice, PciDevice, PfDevice, SysfsRoot, VfDevice, discover, to_status};

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// The sysfs root to read.
    #[arg(long, value_name = "DIR", env = sriov_host::SYSFS_ROOT_ENV, default_value = "/sys")]
    sysfs_root: PathBuf,
    /// Where `vfio/<group>` nodes are. Default: `/dev`, or the `dev` directory next to a
    /// `--sysfs-root` that is not a mounted sysfs, when there is one (the layout of test
    /// fixtures; see `SysfsRoot::from_arg`).
    #[arg(long, value_name = "DIR")]
    dev_root: Option<PathBuf>,
    /// `table` (PFs with their VFs under them), `json` or `yaml` (the list of
    /// `SriovNetworkNodeState.status.interfaces`).
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
    Yaml,
}

pub fn run(args: &DiscoverArgs) -> ExitCode {
    let mut root = SysfsRoot::from_arg(&args.sysfs_root);
    if let Some(dev) = &args.dev_root {
        root = SysfsRoot::with_dev(&args.sysfs_root, dev);
    }
    let found = match discover(&root) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("sriovctl discover: {e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &found.warnings {
        eprintln!("warning: {w}");
    }
    let out = match args.output {
        Output::Table => Ok(table(&found.devices)),
        Output::Json => serde_json::to_string_pretty(&to_status(&found.devices))
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
        Output::Yaml => serde_saphyr::to_string(&to_status(&found.devices)).map_err(|e| e.to_string()),
    };
    match out {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sriovctl discover: cannot print the result: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Column widths: every line stays within 80 columns; longer values are cut with `~`.
const PF_COLS: [usize; 7] = [12, 15, 10, 9, 7, 10, 5];
const VF_COLS: [usize; 6] = [4, 12, 15, 9, 17, 11];

/// The table: one row per PF, its VFs indented under it; VFs without a visible PF last.
pub fn table(devices: &HostDevices) -> String {
    let mut out = String::new();
    if devices.pfs.is_empty() && devices.orphan_vfs.is_empty() {
        return "no PCI network functions found\n".to_string();
    }
    row(
        &mut out,
        "",
        &PF_COLS,
        &["PF", "NAME", "DRIVER", "ID", "VFS", "LINK", "MTU"],
    );
    for pf in &devices.pfs {
        pf_row(&mut out, pf);
        if !pf.vfs.is_empty() {
            row(
                &mut out,
                "  ",
                &VF_COLS,
                &["VF", "PCI ADDRESS", "NETDEV", "DRIVER", "MAC", "IOMMU/VFIO"],
            );
        }
        for vf in &pf.vfs {
            vf_row(&mut out, vf);
        }
    }
    if !devices.orphan_vfs.is_empty() {
        out.push_str("VFs whose PF is not visible:\n");
        row(
            &mut out,
            "  ",
            &VF_COLS,
            &["VF", "PCI ADDRESS", "NETDEV", "DRIVER", "MAC", "IOMMU/VFIO"],
        );
        for vf in &devices.orphan_vfs {
            vf_row(&mut out, vf);
        }
    }
    out
}

fn pf_row(out: &mut String, pf: &PfDevice) {
    let n = pf.pci.netdev();
    let mut name = n.map_or("-".to_string(), |n| n.name.clone());
    if pf.pci.netdevs.len() > 1 {
        name = format!("{name}+{}", pf.pci.netdevs.len() - 1);
    }
    let vfs = if pf.sriov_capable() {
        format!("{}/{}", pf.num_vfs, pf.total_vfs)
    } else {
        "-".to_string()
    };
    let cells = [
        pf.pci.address.to_string(),
        name,
        driver(&pf.pci),
        format!("{}:{}", pf.pci.vendor, pf.pci.device),
        vfs,
        n.map_or("-".to_string(), link),
        n.map_or("-".to_string(), |n| n.mtu.to_string()),
    ];
    row(out, "", &PF_COLS, &cells.each_ref().map(String::as_str));
}

fn vf_row(out: &mut String, vf: &VfDevice) {
    let n = vf.pci.netdev();
    let iommu = match (&vf.pci.vfio_dev, vf.pci.iommu_group) {
        (Some(_), Some(g)) => format!("vfio/{g}"),
        (None, Some(g)) => g.to_string(),
        _ => "-".to_string(),
    };
    let cells = [
        vf.vf_index.map_or("-".to_string(), |i| i.to_string()),
        vf.pci.address.to_string(),
        n.map_or("-".to_string(), |n| n.name.clone()),
        driver(&vf.pci),
        // A 20-byte InfiniBand address differs from its neighbours at the end: keep the end.
        n.map_or("-".to_string(), |n| fit_tail(&n.mac, VF_COLS[4])),
        iommu,
    ];
    row(out, "  ", &VF_COLS, &cells.each_ref().map(String::as_str));
}

fn driver(pci: &PciDevice) -> String {
    pci.driver.clone().unwrap_or_else(|| "-".to_string())
}

/// `down` (administratively), `up 25G`, or `up/<operstate>` when up without a link.
fn link(n: &NetDevice) -> String {
    if !n.admin_up {
        return "down".to_string();
    }
    if n.oper_state != "up" {
        return format!("up/{}", n.oper_state);
    }
    match n.speed_mbps {
        Some(s) if s >= 1000 && s % 1000 == 0 => format!("up {}G", s / 1000),
        Some(s) => format!("up {s}M"),
        None => "up".to_string(),
    }
}

/// One line: `indent`, then each cell padded to its width (the last one not padded).
fn row(out: &mut String, indent: &str, widths: &[usize], cells: &[&str]) {
    let mut line = indent.to_string();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        let cell = fit(cell, *w);
        if i + 1 == cells.len() {
            line.push_str(&cell);
        } else {
            let _ = write!(line, "{cell:<w$}  ");
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn fit(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(w.saturating_sub(1)).collect();
    cut.push('~');
    cut
}

fn fit_tail(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return s.to_string();
    }
    std::iter::once('~').chain(s.chars().skip(n + 1 - w)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widest_rows_fit_80_columns() {
        let pf_width: usize = PF_COLS.iter().sum::<usize>() + 2 * (PF_COLS.len() - 1);
        let vf_width: usize = 2 + VF_COLS.iter().sum::<usize>() + 2 * (VF_COLS.len() - 1);
        assert!(pf_width <= 80 && vf_width <= 80, "{pf_width} {vf_width}");
        assert_eq!(fit("lowerlayerdown", 6), "lower~");
        assert_eq!(fit("eth0", 6), "eth0");
        let ib = "00:00:10:87:fe:80:00:00:00:00:00:00:02:00:00:81:00:33:00:00";
        assert_eq!(fit_tail(ib, 17), "~0:81:00:33:00:00");
        assert_eq!(fit_tail(ib, 17).chars().count(), 17);
    }

    #[test]
    fn link_column() {
        let mut n = NetDevice {
            admin_up: true,
            oper_state: "up".into(),
            speed_mbps: Some(25000),
            ..NetDevice::default()
        };
        assert_eq!(link(&n), "up 25G");
        n.speed_mbps = Some(100);
        assert_eq!(link(&n), "up 100M");
        n.oper_state = "down".into();
        assert_eq!(link(&n), "up/down");
        n.admin_up = false;
        assert_eq!(link(&n), "down");
    }
}
