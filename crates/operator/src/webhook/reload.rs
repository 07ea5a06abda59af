//! Certificate reload: watch the directories holding the certificate and key (Kubernetes
//! replaces secret files through a symlink swap, cert-manager and scripts by rename or
//! rewrite) and reload the rustls config on any change there. A reload that fails (say the
//! certificate is new but the key not yet) keeps the old config; the next event retries.

use std::path::PathBuf;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::TlsFiles;

/// Keeps the file watcher and the reload task alive; dropping it stops reloading.
pub struct CertWatcher {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CertWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn parent(p: &std::path::Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Starts watching `tls` and reloading `config` from it (with the same TLS versions and ALPN
/// protocols, see [`super::tls_config`]). Needs a tokio runtime.
pub fn watch_certs(config: RustlsConfig, tls: TlsFiles, http2: bool) -> anyhow::Result<CertWatcher> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })?;
    let mut dirs = vec![parent(&tls.cert), parent(&tls.key)];
    dirs.dedup();
    for dir in &dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| anyhow::anyhow!("watching {}: {e}", dir.display()))?;
    }
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Let a burst of events (write cert, write key, rename) settle, then reload once.
            tokio::time::sleep(Duration::from_millis(100)).await;
            while rx.try_recv().is_ok() {}
            match super::tls_config(&tls, http2) {
                Ok(new) => {
                    config.reload_from_config(new);
                    tracing::info!(cert = %tls.cert.display(), "reloaded TLS certificate");
                }
                Err(e) => tracing::warn!(
                    cert = %tls.cert.display(),
                    key = %tls.key.display(),
                    "TLS certificate not reloaded, keeping the previous one: {e}"
                ),
            }
        }
    });
    Ok(CertWatcher {
        _watcher: watcher,
        task,
    })
}
