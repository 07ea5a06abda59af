//! Starts a cluster (and with `--node NAME` a kubelet), prints one JSON line describing it
//! (kubeconfig, data dir, pids, start-up times), then holds it until stdin closes. For poking at
//! the cluster by hand (`kubectl --kubeconfig ...`) and for the harness's teardown test, which
//! SIGKILLs this process and checks that nothing is left behind.

use std::io::Read;

use sriov_testcluster::Cluster;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let node_name = match args.as_slice() {
        [] => None,
        [flag, name] if flag == "--node" => Some(name.clone()),
        _ => {
            eprintln!("usage: sriov-testcluster [--node NAME]");
            return std::process::ExitCode::from(2);
        }
    };
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sriov-testcluster: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let node = match node_name.as_deref().map(|n| cluster.start_node(n)).transpose() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("sriov-testcluster: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut pids = cluster.pids();
    pids.extend(node.iter().flat_map(|n| n.pids()));
    let line = serde_json::json!({
        "kubeconfig": cluster.kubeconfig(),
        "dataDir": cluster.data_dir(),
        "pids": pids,
        "nodeRootDir": node.as_ref().map(|n| n.root_dir().to_path_buf()),
        "apiserverReadyMs": cluster.startup_times().apiserver_ready.as_millis() as u64,
        "nodeReadyMs": node.as_ref().map(|n| n.ready_after().as_millis() as u64),
    });
    println!("{line}");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(node);
    drop(cluster);
    std::process::ExitCode::SUCCESS
}
