//! The cluster's self-signed PKI (rcgen): one CA that signs the API server's serving cert and
//! every client cert (admin, nodes), plus the service-account signing key. ECDSA P-256 keys in
//! PKCS#8 PEM, which the API server, the kubelet, kubectl and kube-rs all read.

use std::net::{IpAddr, Ipv4Addr};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::Error;

/// A certificate and its private key, PEM.
#[derive(Clone, Debug)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The CA (kept to sign node certs later) and the service-account key.
pub struct Pki {
    ca_params: CertificateParams,
    ca_key: KeyPair,
    pub ca: CertKey,
    pub service_account_key_pem: String,
    pub service_account_public_pem: String,
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

impl Pki {
    pub fn new() -> Result<Pki, Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = name("sriov-testcluster-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = CertKey {
            cert_pem: ca_cert.pem(),
            key_pem: ca_key.serialize_pem(),
        };
        let sa = KeyPair::generate()?;
        let (service_account_key_pem, service_account_public_pem) = (sa.serialize_pem(), sa.public_key_pem());
        Ok(Pki {
            ca_params,
            ca_key,
            ca,
            service_account_key_pem,
            service_account_public_pem,
        })
    }

    fn sign(&self, params: CertificateParams) -> Result<CertKey, Error> {
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The API server's serving cert: 127.0.0.1, localhost and the in-cluster names.
    pub fn serving(&self) -> Result<CertKey, Error> {
        self.serving_for(&[])
    }

    /// [`Pki::serving`] plus `ips` (the `kubernetes` Service's ClusterIP, which in-cluster
    /// clients dial and verify).
    pub fn serving_for(&self, ips: &[Ipv4Addr]) -> Result<CertKey, Error> {
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
        ])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(*ip)));
        }
        params.distinguished_name = name("kube-apiserver", None);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client cert: the API server takes CN as the user and O (if any) as the group.
    pub fn client(&self, user: &str, group: Option<&str>) -> Result<CertKey, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(user, group);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }
}
