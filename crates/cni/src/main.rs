//! `sriov`: the CNI plugin binary. Reads `CNI_*` and stdin, prints the result or the error
//! object on stdout, exits 1 on error. One log line per run, as `logLevel` / `logFile` ask
//! (default: `info` on stderr).

use std::io::{Read, Write};
use std::time::Instant;

use sriov_cni::config::{cni_version, lookup, parse_object};
use sriov_cni::env::CniEnv;
use sriov_cni::{Ctx, run};

/// Levels as upstream names them, most severe first.
const LEVELS: &[&str] = &["panic", "error", "warning", "info", "debug"];

fn log(stdin: &[u8], level: &str, msg: &str) {
    let obj = parse_object(stdin).ok();
    let get = |k: &str| {
        obj.as_ref()
            .and_then(|o| lookup(o, k))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let max = LEVELS.iter().position(|l| *l == get("logLevel")).unwrap_or(3);
    if LEVELS.iter().position(|l| *l == level).unwrap_or(0) > max {
        return;
    }
    let file = obj
        .as_ref()
        .and_then(|o| lookup(o, "logFile"))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let line = format!("{secs:.3} {level} sriov: {msg}\n");
    let written = !file.is_empty()
        && std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .is_ok();
    if !written {
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// The installer mode of the CNI image (see `sriov_cni::install`): copy, then exit or idle.
fn install(i: &sriov_cni::install::Install) -> ! {
    let copied = std::env::current_exe().and_then(|exe| sriov_cni::install::copy_plugin(&exe, i));
    match copied {
        Ok(dest) => eprintln!("sriov: installed {}", dest.display()),
        Err(e) => {
            eprintln!("sriov: installing into {}: {e}", i.bin_dir.display());
            std::process::exit(1);
        }
    }
    if !i.sleep {
        std::process::exit(0);
    }
    loop {
        std::thread::park();
    }
}

fn main() {
    let t0 = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match sriov_cni::install::parse(std::env::var_os("CNI_COMMAND").is_some(), &args) {
        Some(Ok(i)) => install(&i),
        Some(Err(e)) => {
            eprintln!("sriov: {e}");
            std::process::exit(2);
        }
        None => {}
    }
    let mut stdin = Vec::new();
    let env = CniEnv::from_env(|k| std::env::var(k).ok());
    // Read for every command, VERSION included, as the CNI library's skel does.
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let version = parse_object(&stdin)
        .ok()
        .and_then(|o| cni_version(&o).ok())
        .unwrap_or_else(|| "1.1.0".into());
    let quiet = env
        .as_ref()
        .is_ok_and(|e| e.command == sriov_cni::env::Command::Version);
    let what = env.as_ref().map_or_else(
        |_| String::from("?"),
        |e| {
            format!(
                "{:?} containerID={} netns={} ifname={}",
                e.command, e.container_id, e.netns, e.ifname
            )
        },
    );
    let res = env.and_then(|env| run(&Ctx::from_env(), &env, &stdin));
    let mut out = std::io::stdout().lock();
    match res {
        Ok(v) => {
            if let Some(v) = v {
                let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            if !quiet {
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                log(&stdin, "info", &format!("{what}: ok in {ms:.1} ms"));
            }
        }
        Err(e) => {
            let _ = writeln!(out, "{}", e.to_json(&version));
            drop(out);
            log(&stdin, "error", &format!("{what}: {} ({})", e.msg, e.details));
            std::process::exit(1);
        }
    }
}
