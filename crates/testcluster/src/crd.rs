//! Installing CRDs the way a cluster admin does (server-side apply), and waiting until the API
//! server serves them (`Established`).

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};

use crate::Error;

/// Applies every CRD (server-side apply, field manager `sriov-testcluster`) and waits until each
/// is `Established` and its resource is served.
pub async fn install(client: &kube::Client, crds: &[CustomResourceDefinition]) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply("sriov-testcluster").force();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let mut body = crd.clone();
        body.metadata.managed_fields = None;
        body.status = None;
        api.patch(&name, &pp, &Patch::Apply(&body)).await?;
    }
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        wait_established(&api, &name, Duration::from_secs(30)).await?;
    }
    Ok(())
}

/// Waits for the `Established` condition of one CRD.
pub async fn wait_established(
    api: &Api<CustomResourceDefinition>,
    name: &str,
    limit: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        let crd = api.get(name).await?;
        let conditions = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
        {
            return Ok(());
        }
        if started.elapsed() > limit {
            let conditions = conditions
                .iter()
                .map(|c| {
                    format!(
                        "{}={} ({})",
                        c.type_,
                        c.status,
                        c.message.clone().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::CrdNotEstablished {
                name: name.to_string(),
                waited: limit,
                conditions,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
