//! `sriovctl pod-resources [--socket PATH] [--resource NAME] [-o table|json]`: which pod holds
//! which device, as the kubelet's PodResources API reports it (what Kuryr and Multus read).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use sriov_device_plugin::pod_resources::{self, DEFAULT_SOCKET, PodDevices};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct PodResourcesArgs {
    /// The kubelet's PodResources socket.
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Only this resource (e.g. intel.com/intel_sriov_netdevice).
    #[arg(long)]
    resource: Option<String>,
    #[arg(long = "output", short = 'o', value_enum, default_value = "table")]
    output: Format,
}

pub fn run(args: &PodResourcesArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sriovctl pod-resources: {e}");
            return ExitCode::FAILURE;
        }
    };
    let resp = match rt.block_on(pod_resources::list(&args.socket, Duration::from_secs(10))) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sriovctl pod-resources: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rows = pod_resources::flatten(&resp, args.resource.as_deref());
    match args.output {
        Format::Json => match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("sriovctl pod-resources: {e}");
                return ExitCode::FAILURE;
            }
        },
        Format::Table => print!("{}", table(&rows)),
    }
    ExitCode::SUCCESS
}

/// Fixed-width columns: NAMESPACE POD CONTAINER RESOURCE DEVICES.
fn table(rows: &[PodDevices]) -> String {
    let head = ["NAMESPACE", "POD", "CONTAINER", "RESOURCE", "DEVICES"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.namespace.clone(),
                r.pod.clone(),
                r.container.clone(),
                r.resource.clone(),
                r.devices.join(","),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.len());
        }
    }
    let line = |c: [&str; 5]| {
        let mut s = String::new();
        for (i, (w, v)) in width.iter().zip(c).enumerate() {
            if i == 4 {
                s.push_str(v);
            } else {
                s.push_str(&format!("{v:<w$}   "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head);
    for c in &cells {
        out.push_str(&line([&c[0], &c[1], &c[2], &c[3], &c[4]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let rows = vec![PodDevices {
            namespace: "default".into(),
            pod: "p".into(),
            container: "c".into(),
            resource: "intel.com/vf".into(),
            devices: vec!["0000:01:10.1".into(), "0000:01:10.3".into()],
        }];
        assert_eq!(
            table(&rows),
            "NAMESPACE   POD   CONTAINER   RESOURCE       DEVICES\n\
             default     p     c           intel.com/vf   0000:01:10.1,0000:01:10.3\n"
        );
    }
}
