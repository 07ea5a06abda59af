//! kube-controller-manager and kube-scheduler, on demand: the apiserver alone is the cheapest
//! cluster (no DaemonSet makes pods, no pod is scheduled, a pod needs `spec.nodeName`), so tests
//! that need Deployments, DaemonSets, garbage collection or scheduling ask for them.

use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use crate::process::{Server, free_port, log_tail};
use crate::{Cluster, Error, block_on, io};

/// How long the two get to take their leader-election leases.
const LEASE_LIMIT: Duration = Duration::from_secs(60);

impl Cluster {
    /// Starts kube-controller-manager and kube-scheduler (once per cluster; later calls return
    /// at once) and waits until both hold their leader-election lease, i.e. run their loops.
    pub fn start_control_loops(&self) -> Result<(), Error> {
        let mut loops = self.control_loops.lock().unwrap_or_else(|e| e.into_inner());
        if !loops.is_empty() {
            return Ok(());
        }
        let kcm = self.assets.dir.join("kube-controller-manager");
        let sched = self.assets.dir.join("kube-scheduler");
        for (what, path) in [("kube-controller-manager", &kcm), ("kube-scheduler", &sched)] {
            if !path.is_file() {
                return Err(Error::MissingAsset {
                    what,
                    path: path.clone(),
                    hint: "run scripts/deps/40-k8s.sh",
                });
            }
        }
        let dir = self.data_dir().to_path_buf();
        let pki = dir.join("pki");
        let logs = dir.join("logs");
        let started = Instant::now();

        let kubeconfig = pki.join("kube-controller-manager.kubeconfig");
        self.kubeconfig_as("system:kube-controller-manager", &kubeconfig)?;
        let mut cmd = Command::new(&kcm);
        for flag in [
            "--kubeconfig",
            "--authentication-kubeconfig",
            "--authorization-kubeconfig",
        ] {
            cmd.arg(format!("{flag}={}", kubeconfig.display()));
        }
        cmd.args(["--bind-address=127.0.0.1", "--leader-elect=true"])
            .arg(format!("--secure-port={}", free_port()?))
            .arg(format!(
                "--cert-dir={}",
                dir.join("kube-controller-manager").display()
            ))
            .arg(format!(
                "--service-account-private-key-file={}",
                pki.join("sa.key").display()
            ))
            .arg(format!("--root-ca-file={}", pki.join("ca.crt").display()))
            .arg(format!(
                "--cluster-signing-cert-file={}",
                pki.join("ca.crt").display()
            ))
            .arg(format!(
                "--cluster-signing-key-file={}",
                pki.join("ca.key").display()
            ))
            .arg("--use-service-account-credentials=true");
        loops.push(Server::spawn(
            "kube-controller-manager",
            cmd,
            logs.join("kube-controller-manager.log"),
            &self.reaper,
        )?);

        let kubeconfig = pki.join("kube-scheduler.kubeconfig");
        self.kubeconfig_as("system:kube-scheduler", &kubeconfig)?;
        let mut cmd = Command::new(&sched);
        for flag in [
            "--kubeconfig",
            "--authentication-kubeconfig",
            "--authorization-kubeconfig",
        ] {
            cmd.arg(format!("{flag}={}", kubeconfig.display()));
        }
        cmd.args(["--bind-address=127.0.0.1", "--leader-elect=true"])
            .arg(format!("--secure-port={}", free_port()?));
        loops.push(Server::spawn(
            "kube-scheduler",
            cmd,
            logs.join("kube-scheduler.log"),
            &self.reaper,
        )?);

        for i in 0..loops.len() {
            let name = loops[i].name;
            loop {
                loops[i].check_running()?;
                if self.lease_held(name)? {
                    break;
                }
                if started.elapsed() > LEASE_LIMIT {
                    return Err(Error::NotReady {
                        what: format!("{name} leader-election lease"),
                        waited: LEASE_LIMIT,
                        last: "no holder".into(),
                        tail: log_tail(&loops[i].log),
                        log: loops[i].log.clone(),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        eprintln!(
            "sriov-testcluster: kube-controller-manager and kube-scheduler running in {} ms",
            started.elapsed().as_millis()
        );
        Ok(())
    }

    /// A kubeconfig for a component whose user RBAC knows by name (no group).
    fn kubeconfig_as(&self, user: &str, path: &std::path::Path) -> Result<(), Error> {
        let cert = self.pki.client(user, None)?;
        let (crt, key) = (path.with_extension("crt"), path.with_extension("key"));
        std::fs::write(&crt, &cert.cert_pem).map_err(io(&crt))?;
        std::fs::write(&key, &cert.key_pem).map_err(io(&key))?;
        let text = crate::kubeconfig_text(self.server(), &self.data_dir().join("pki/ca.crt"), &crt, &key);
        std::fs::write(path, text).map_err(io(path))
    }

    /// `kube-system/<name>` Lease has a holder.
    fn lease_held(&self, name: &str) -> Result<bool, Error> {
        let config = self.config().clone();
        let lease = block_on(async move {
            let api: Api<Lease> = Api::namespaced(kube::Client::try_from(config)?, "kube-system");
            api.get_opt(name).await
        })??;
        Ok(lease
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .is_some_and(|h| !h.is_empty()))
    }
}
