//! `sriov`: the CNI plugin binary. Reads `CNI_*` and stdin, prints the result or the error
//! object on stdout, exits 1 on error.

use std::io::{Read, Write};

use sriov_cni::config::{cni_version, parse_object};
use sriov_cni::env::CniEnv;
use sriov_cni::{Ctx, run};

fn log_error(stdin: &[u8], msg: &str) {
    let Ok(obj) = parse_object(stdin) else { return };
    let Some(file) = sriov_cni::config::lookup(&obj, "logFile")
        .and_then(|v| v.as_str())
        .filter(|f| !f.is_empty())
    else {
        eprintln!("sriov: {msg}");
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = writeln!(f, "{secs} error sriov: {msg}");
    }
}

fn main() {
    let mut stdin = Vec::new();
    let env = CniEnv::from_env(|k| std::env::var(k).ok());
    // Read for every command, VERSION included, as the CNI library's skel does.
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let version = parse_object(&stdin)
        .ok()
        .and_then(|o| cni_version(&o).ok())
        .unwrap_or_else(|| "1.1.0".into());
    let res = env.and_then(|env| run(&Ctx::from_env(), &env, &stdin));
    let mut out = std::io::stdout().lock();
    match res {
        Ok(Some(v)) => {
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Ok(None) => {}
        Err(e) => {
            log_error(&stdin, &format!("{} ({})", e.msg, e.details));
            let _ = writeln!(out, "{}", e.to_json(&version));
            drop(out);
            std::process::exit(1);
        }
    }
}
