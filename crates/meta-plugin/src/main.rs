//! `multus`: the meta CNI plugin. The CNI protocol: `CNI_*` environment, the config on stdin,
//! the result (ADD) or an error object on stdout, non-zero exit on error.

use std::io::Read;
use std::process::ExitCode;

use serde_json::{Map, Value, json};
use sriov_meta_plugin::cmd::{Env, Failure, Plugin};
use sriov_meta_plugin::{config, log};

const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn print_error(version: &str, f: &Failure) -> ExitCode {
    let v = if version.is_empty() { "1.1.0" } else { version };
    println!("{}", json!({"cniVersion": v, "code": f.code, "msg": f.msg}));
    ExitCode::FAILURE
}

fn required(env: &Env) -> Option<&'static str> {
    let needs_netns = matches!(env.command.as_str(), "ADD" | "CHECK");
    let per_container = matches!(env.command.as_str(), "ADD" | "DEL" | "CHECK");
    if per_container && env.container_id.is_empty() {
        Some("CNI_CONTAINERID")
    } else if per_container && env.ifname.is_empty() {
        Some("CNI_IFNAME")
    } else if needs_netns && env.netns.is_empty() {
        Some("CNI_NETNS")
    } else {
        None
    }
}

fn main() -> ExitCode {
    let env = Env {
        command: var("CNI_COMMAND"),
        container_id: var("CNI_CONTAINERID"),
        netns: var("CNI_NETNS"),
        ifname: var("CNI_IFNAME"),
        args: var("CNI_ARGS"),
        path: var("CNI_PATH"),
    };
    if env.command == "VERSION" {
        println!(
            "{}",
            json!({"cniVersion": "1.1.0", "supportedVersions": SUPPORTED})
        );
        return ExitCode::SUCCESS;
    }
    if env.command.is_empty() {
        return print_error(
            "",
            &Failure {
                code: 4,
                msg: "CNI_COMMAND is not set".into(),
            },
        );
    }
    let mut stdin = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
        return print_error(
            "",
            &Failure {
                code: 5,
                msg: format!("cannot read the config from stdin: {e}"),
            },
        );
    }
    let raw: Map<String, Value> = serde_json::from_slice(&stdin).unwrap_or_default();
    let version = raw
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let cfg = match config::parse(&stdin) {
        Ok(c) => c,
        Err(e) => {
            return print_error(
                &version,
                &Failure {
                    code: 7,
                    msg: e.to_string(),
                },
            );
        }
    };
    if let Some(missing) = required(&env) {
        return print_error(
            &version,
            &Failure {
                code: 4,
                msg: format!("{missing} is not set"),
            },
        );
    }
    let log = log::Log {
        file: cfg.log_file.clone(),
        level: log::level(&cfg.log_level),
        stderr: cfg.log_to_stderr,
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return print_error(
                &version,
                &Failure {
                    code: 5,
                    msg: format!("tokio runtime: {e}"),
                },
            );
        }
    };
    let command = env.command.clone();
    let plugin = Plugin::new(cfg, env, raw, log.clone());
    log.debug(&format!("{command} container {}", plugin.env.container_id));
    match rt.block_on(plugin.run()) {
        Ok(Some(result)) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(f) => {
            log.error(&format!("{command}: {}", f.msg));
            print_error(&version, &f)
        }
    }
}
