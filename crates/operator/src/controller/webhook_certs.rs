//! The webhooks' serving certificates when no cert-manager or OpenShift service CA provides them:
//! a self-signed CA and a serving certificate for the webhook's Service, kept in a
//! `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`, `ca.crt`). The apiserver trusts the CA
//! through the webhook configuration's `caBundle`.
//!
//! A Secret that already holds a certificate for the same Service names is reused as it is, so a
//! reconcile (or an operator restart) never rotates the CA under running webhooks. The
//! certificates are valid for ten years; deleting the Secret makes the operator issue new ones.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::render::manifests::{CREATED_BY_LABEL, CREATED_BY_VALUE};

/// Annotation listing the DNS names the Secret's certificate was issued for.
pub const SERVING_NAMES_ANNOTATION: &str = "sriovnetwork.openshift.io/serving-names";
pub const CA_KEY: &str = "ca.crt";
pub const CERT_KEY: &str = "tls.crt";
pub const KEY_KEY: &str = "tls.key";

/// The names a Service is reached by from the apiserver.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// The CA (PEM) of `secret` when it can keep serving `names`: all three keys present and issued
/// for exactly these names. `None` means a new certificate is needed.
pub fn reusable_ca(secret: &Secret, names: &[String]) -> Option<String> {
    let issued_for = secret
        .metadata
        .annotations
        .as_ref()?
        .get(SERVING_NAMES_ANNOTATION)?;
    if *issued_for != names.join(",") {
        return None;
    }
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .filter(|s| s.contains("-----BEGIN"))
    };
    text(CERT_KEY)?;
    text(KEY_KEY)?;
    text(CA_KEY)
}

/// Whether the operator issued `secret` (its created-by label): only such a Secret may be
/// replaced. A Secret someone else made (a user's, cert-manager's) is never deleted.
pub fn issued_by_operator(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CREATED_BY_LABEL))
        .is_some_and(|v| v == CREATED_BY_VALUE)
}

/// The CA (PEM, key `ca.crt`) of a Secret the operator did not issue, used as it is.
pub fn foreign_ca(secret: &Secret) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(CA_KEY)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .filter(|s| s.contains("-----BEGIN"))
}

/// A freshly issued CA and serving certificate, PEM.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Ten years from the current year, January 1st.
fn not_after_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // 365.2425-day years: off by at most a day, which is no matter for a ten-year validity.
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0) + 10
}

/// Issues a new CA and a serving certificate for `names` (ECDSA P-256).
pub fn issue(names: &[String]) -> Result<IssuedCert, rcgen::Error> {
    let until = rcgen::date_time_ymd(not_after_year(), 1, 1);
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{CREATED_BY_VALUE}-ca"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_after = until;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    if let Some(first) = names.first() {
        params.distinguished_name.push(DnType::CommonName, first.clone());
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_after = until;
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(IssuedCert {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The Secret holding `issued` for `names`.
pub fn tls_secret(name: &str, namespace: &str, names: &[String], issued: &IssuedCert) -> Secret {
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                CREATED_BY_LABEL.to_string(),
                CREATED_BY_VALUE.to_string(),
            )])),
            annotations: Some(BTreeMap::from([(
                SERVING_NAMES_ANNOTATION.to_string(),
                names.join(","),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(BTreeMap::from([
            (CA_KEY.to_string(), bytes(&issued.ca_pem)),
            (CERT_KEY.to_string(), bytes(&issued.cert_pem)),
            (KEY_KEY.to_string(), bytes(&issued.key_pem)),
        ])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_secret_is_reused_only_for_the_same_names_and_with_all_keys() {
        let names = service_dns_names("svc", "ns");
        assert_eq!(names[2], "svc.ns.svc");
        let issued = issue(&names).unwrap();
        let secret = tls_secret("s", "ns", &names, &issued);
        assert_eq!(reusable_ca(&secret, &names), Some(issued.ca_pem.clone()));
        assert_eq!(reusable_ca(&secret, &service_dns_names("svc", "other")), None);
        let mut partial = secret.clone();
        partial.data.as_mut().unwrap().remove(KEY_KEY);
        assert_eq!(reusable_ca(&partial, &names), None);
        let mut foreign = secret;
        foreign.metadata.annotations = None;
        assert_eq!(reusable_ca(&foreign, &names), None);
    }

    #[test]
    fn only_the_operators_own_secret_may_be_replaced_and_a_foreign_ca_is_used_as_it_is() {
        let names = service_dns_names("svc", "ns");
        let issued = issue(&names).unwrap();
        let ours = tls_secret("s", "ns", &names, &issued);
        assert!(issued_by_operator(&ours));
        // cert-manager's Secret: no created-by label, no serving-names annotation, a ca.crt.
        let mut cert_manager = ours.clone();
        cert_manager.metadata.labels = None;
        cert_manager.metadata.annotations = None;
        assert!(!issued_by_operator(&cert_manager));
        assert_eq!(reusable_ca(&cert_manager, &names), None);
        assert_eq!(foreign_ca(&cert_manager), Some(issued.ca_pem.clone()));
        cert_manager.data.as_mut().unwrap().remove(CA_KEY);
        assert_eq!(foreign_ca(&cert_manager), None);
    }

    #[test]
    fn each_issue_makes_a_new_ca() {
        let names = service_dns_names("svc", "ns");
        let (a, b) = (issue(&names).unwrap(), issue(&names).unwrap());
        assert_ne!(a.ca_pem, b.ca_pem);
        assert!(a.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.key_pem.contains("PRIVATE KEY"));
        assert!(not_after_year() >= 2035);
    }
}
