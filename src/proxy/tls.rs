//! TLS termination: the certificate comes from the current routing table,
//! chosen by SNI, so a rotated Secret takes effect on the next handshake.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::TableHandle;
use crate::routing::host::normalize_host;

/// Picks the certificate for a handshake on one listener address.
#[derive(Debug)]
struct SniResolver {
    table: TableHandle,
    listener: SocketAddr,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.table.load();
        let port = table.listeners.get(&self.listener)?;
        // Without SNI only a listener without a hostname can answer.
        let host = normalize_host(hello.server_name().unwrap_or(""));
        port.certificates.best(&host).map(|c| c.key.clone())
    }
}

/// The rustls configuration for one HTTPS listener address.
pub(super) fn server_config(
    table: TableHandle,
    listener: SocketAddr,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { table, listener }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
