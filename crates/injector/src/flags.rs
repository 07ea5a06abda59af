//! Upstream's command line (`cmd/webhook/main.go`, Go's `flag` package): `-port=8443`,
//! `-port 8443`, `--port=8443` and `--port 8443` all mean the same; a bool flag alone
//! (`-insecure`) is true, `-insecure=false` is false. Parsing is a plain function so the tests
//! cover exactly what the binary accepts.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Parser};

use crate::mutate::{DEFAULT_RESOURCE_NAME_KEY, Settings};
use crate::server::Tls;

/// The service account's CA: upstream's default `-client-ca` when none is given.
pub const SA_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

#[derive(Parser, Debug)]
#[command(
    name = "network-resources-injector",
    about = "Network resources injector (mutating admission webhook)"
)]
struct Args {
    #[arg(long, default_value_t = 8443)]
    port: u16,
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    bind_address: IpAddr,
    #[arg(long = "tls-cert-file", default_value = "cert.pem")]
    tls_cert_file: PathBuf,
    #[arg(long = "tls-private-key-file", default_value = "key.pem")]
    tls_private_key_file: PathBuf,
    /// Accept clients without a certificate (no client-CA check).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    insecure: bool,
    /// CA bundle for client certificates; repeatable. Default: the service account's CA.
    #[arg(long = "client-ca")]
    client_ca: Vec<PathBuf>,
    #[arg(long = "health-check-port", default_value_t = 8444)]
    health_check_port: u16,
    #[arg(long = "enable-http2", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    enable_http2: bool,
    /// `VersionTLS12`/`TLS1.2`/`1.2` (default) or `VersionTLS13`/`TLS1.3`/`1.3`.
    #[arg(long = "tls-min-version", default_value = "VersionTLS12")]
    tls_min_version: String,
    #[arg(long = "injectHugepageDownApi", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    inject_hugepage_down_api: bool,
    /// Comma list of NAD annotation keys holding a resource name.
    #[arg(long = "network-resource-name-keys", default_value = DEFAULT_RESOURCE_NAME_KEY)]
    network_resource_name_keys: String,
    #[arg(long = "honor-resources", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    honor_resources: bool,
    /// Accepted for upstream compatibility; rustls chooses the suites and curves.
    #[arg(long = "tls-cipher-suites", hide = true)]
    tls_cipher_suites: Option<String>,
    #[arg(long = "tls-curve-preferences", hide = true)]
    tls_curve_preferences: Option<String>,
    #[arg(long = "logtostderr", hide = true, num_args = 0..=1, default_missing_value = "true")]
    logtostderr: Option<String>,
    #[arg(long = "alsologtostderr", hide = true, num_args = 0..=1, default_missing_value = "true")]
    alsologtostderr: Option<String>,
    #[arg(long = "v", hide = true)]
    verbosity: Option<String>,
}

/// Everything the command line decides.
#[derive(Clone, Debug)]
pub struct Options {
    pub port: u16,
    pub bind_address: IpAddr,
    pub health_check_port: u16,
    pub tls: Tls,
    pub settings: Settings,
}

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error("-tls-min-version {0:?}: rustls supports VersionTLS12 and VersionTLS13")]
    TlsVersion(String),
    #[error("-network-resource-name-keys: resource keys can not be empty")]
    NoKeys,
}

/// Go's `flag` takes `-name`; clap takes `--name`. Single-dash words become double-dash.
fn go_style(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            if i > 0 && a.starts_with('-') && !a.starts_with("--") && a.len() > 2 {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

fn min_version_13(text: &str) -> Result<bool, FlagError> {
    match text {
        "VersionTLS12" | "TLS1.2" | "1.2" | "TLS12" => Ok(false),
        "VersionTLS13" | "TLS1.3" | "1.3" | "TLS13" => Ok(true),
        other => Err(FlagError::TlsVersion(other.to_string())),
    }
}

/// Parses a command line (`args[0]` is the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, FlagError> {
    let args = Args::try_parse_from(go_style(args))?;
    let keys: Vec<String> = args
        .network_resource_name_keys
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(FlagError::NoKeys);
    }
    let tls = Tls {
        cert: args.tls_cert_file,
        key: args.tls_private_key_file,
        client_ca: if args.client_ca.is_empty() && !args.insecure {
            vec![SA_CA.into()]
        } else {
            args.client_ca
        },
        insecure: args.insecure,
        http2: args.enable_http2,
        min_version_13: min_version_13(&args.tls_min_version)?,
    };
    Ok(Options {
        port: args.port,
        bind_address: args.bind_address,
        health_check_port: args.health_check_port,
        tls,
        settings: Settings {
            resource_name_keys: keys,
            hugepage_down_api: args.inject_hugepage_down_api,
            honor_resources: args.honor_resources,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse_line(line: &str) -> Result<Options, FlagError> {
        parse(
            std::iter::once("network-resources-injector".to_string())
                .chain(line.split_whitespace().map(String::from)),
        )
    }

    #[test]
    fn upstreams_defaults() {
        let o = parse_line("").unwrap();
        assert_eq!(o.port, 8443);
        assert_eq!(o.bind_address.to_string(), "0.0.0.0");
        assert_eq!(o.health_check_port, 8444);
        assert_eq!(o.tls.cert, PathBuf::from("cert.pem"));
        assert_eq!(o.tls.key, PathBuf::from("key.pem"));
        assert!(!o.tls.insecure);
        assert_eq!(
            o.tls.client_ca,
            [PathBuf::from(SA_CA)],
            "default client CA: the service account's"
        );
        assert!(!o.tls.http2, "HTTP/2 is off unless -enable-http2");
        assert!(!o.tls.min_version_13);
        assert_eq!(o.settings.resource_name_keys, [DEFAULT_RESOURCE_NAME_KEY]);
        assert!(!o.settings.hugepage_down_api);
        assert!(!o.settings.honor_resources);
    }

    #[test]
    fn single_and_double_dash_with_and_without_equals_agree() {
        for line in [
            "-port=6443 -bind-address=127.0.0.1 -health-check-port=9444 -tls-cert-file=/c -tls-private-key-file=/k -enable-http2 -tls-min-version=VersionTLS13 -injectHugepageDownApi -honor-resources -network-resource-name-keys=a/b,c/d -client-ca=/ca1 -client-ca=/ca2",
            "--port 6443 --bind-address 127.0.0.1 --health-check-port 9444 --tls-cert-file /c --tls-private-key-file /k --enable-http2=true --tls-min-version TLS1.3 --injectHugepageDownApi=true --honor-resources --network-resource-name-keys a/b,c/d --client-ca /ca1 --client-ca=/ca2",
            "-port 6443 --bind-address=127.0.0.1 -health-check-port 9444 --tls-cert-file=/c -tls-private-key-file /k -enable-http2=true -tls-min-version 1.3 -injectHugepageDownApi -honor-resources=true -network-resource-name-keys=a/b,c/d -client-ca /ca1 --client-ca /ca2",
        ] {
            let o = parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(o.port, 6443, "{line}");
            assert_eq!(o.bind_address.to_string(), "127.0.0.1", "{line}");
            assert_eq!(o.health_check_port, 9444, "{line}");
            assert_eq!(
                (o.tls.cert.to_str(), o.tls.key.to_str()),
                (Some("/c"), Some("/k")),
                "{line}"
            );
            assert!(o.tls.http2 && o.tls.min_version_13, "{line}");
            assert!(
                o.settings.hugepage_down_api && o.settings.honor_resources,
                "{line}"
            );
            assert_eq!(o.settings.resource_name_keys, ["a/b", "c/d"], "{line}");
            assert_eq!(
                o.tls.client_ca,
                [PathBuf::from("/ca1"), PathBuf::from("/ca2")],
                "{line}"
            );
            assert!(!o.tls.insecure, "{line}");
        }
    }

    #[test]
    fn insecure_drops_the_default_client_ca_and_false_means_false() {
        let o = parse_line("-insecure").unwrap();
        assert!(o.tls.insecure);
        assert!(o.tls.client_ca.is_empty());
        let o = parse_line("--insecure=true").unwrap();
        assert!(o.tls.insecure);
        // The operator's manifest spelling.
        let o = parse_line("--port=6443 --insecure=true").unwrap();
        assert!(o.tls.insecure && o.port == 6443);
        let o = parse_line("-insecure=false").unwrap();
        assert!(!o.tls.insecure);
        assert_eq!(o.tls.client_ca, [PathBuf::from(SA_CA)]);
    }

    #[test]
    fn glog_and_tls_tuning_flags_are_accepted() {
        parse_line("-logtostderr -v=2 -alsologtostderr=true -tls-cipher-suites=TLS_AES_128_GCM_SHA256 -tls-curve-preferences=X25519")
            .unwrap();
    }

    #[test]
    fn bad_values_are_refused_naming_the_flag() {
        let e = parse_line("-tls-min-version=VersionTLS10").unwrap_err();
        assert!(e.to_string().contains("-tls-min-version \"VersionTLS10\""), "{e}");
        let e = parse_line("-network-resource-name-keys=,").unwrap_err();
        assert!(e.to_string().contains("-network-resource-name-keys"), "{e}");
        let e = parse_line("-port=notaport").unwrap_err();
        assert!(e.to_string().contains("--port"), "{e}");
        assert!(parse_line("-no-such-flag").is_err());
    }
}
