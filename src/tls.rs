//! TLS material for the SIP and HTTP listeners ([tls]): the certificate chain and key, and the
//! CA client certificates are verified against, read from PEM files into one rustls
//! `ServerConfig` (ring provider) shared by both.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsConfig;

fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{key} {}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// The server side of TLS under `c` (after [`crate::config::Config::validate`]).
pub fn server_config(c: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let chain = certificates(&c.certificate, "tls.certificate")?;
    let key = PrivateKeyDer::from_pem_file(&c.private_key)
        .map_err(|e| format!("tls.private_key {}: {e}", c.private_key.display()))?;
    // ring rather than aws-lc-rs (a cmake C build of minutes on a small machine); deprecated
    // for lacking post-quantum key exchange, which SIP peers do not offer yet
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let builder = if c.client_ca.as_os_str().is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for ca in certificates(&c.client_ca, "tls.client_ca")? {
            roots
                .add(ca)
                .map_err(|e| format!("tls.client_ca {}: {e}", c.client_ca.display()))?;
        }
        // clients without a certificate are served too: a verified one marks a trusted peer
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("tls.client_ca {}: {e}", c.client_ca.display()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls.private_key {}: {e}", c.private_key.display()))?;
    Ok(Arc::new(config))
}
