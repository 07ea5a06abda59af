//! Starts the process's shared cluster (and with `--node NAME` a kubelet), prints one JSON line
//! describing it (kubeconfig, data dir, pids, start-up times), then holds it until stdin closes.
//! For poking at the cluster by hand (`kubectl --kubeconfig ...`) and for the harness's teardown
//! tests, which SIGKILL this process, or close stdin with `--panic` given (it then panics with the
//! cluster in a static, whose destructor never runs), and check that nothing is left behind.

use std::io::Read;

use sriov_testcluster::Cluster;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let panic_at_eof = args.iter().any(|a| a == "--panic");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "--panic").collect();
    let node_name = match rest.as_slice() {
        [] => None,
        [flag, name] if *flag == "--node" => Some(name.to_string()),
        _ => {
            eprintln!("usage: sriov-testcluster [--node NAME] [--panic]");
            return std::process::ExitCode::from(2);
        }
    };
    // The shared cluster lives in a static: no destructor runs at exit, the reaper tears it down.
    let Some(cluster) = Cluster::shared() else {
        return std::process::ExitCode::FAILURE;
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
    if panic_at_eof {
        panic!("sriov-testcluster: panicking with the cluster up, as asked (--panic)");
    }
    drop(node);
    std::process::ExitCode::SUCCESS
}
