//! TLS for `https://` targets: HTTP/1.1 over rustls (ring), the server's certificate checked
//! against the platform's trust store, or only against `--cacert`'s certificates (curl's
//! meaning), or not at all with `--insecure`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;

pub use rustls::ClientConfig;

/// How the server's certificate is checked.
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// The platform's trust store.
    #[default]
    Platform,
    /// Only these CA certificates (PEM), as curl's `--cacert`.
    Ca(Vec<u8>),
    /// Not at all (`--insecure`): for test servers with self-signed certificates.
    Insecure,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `trust`, offering HTTP/2 (ALPN `h2`) or HTTP/1.1; errors say
/// which certificate file is wrong.
pub fn client_config(trust: &Trust, http2: bool) -> Result<Arc<ClientConfig>, String> {
    let b = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let mut cfg = match trust {
        Trust::Platform => {
            use rustls_platform_verifier::BuilderVerifierExt;
            b.with_platform_verifier()
                .map_err(|e| format!("tls: the platform's trust store: {e}"))?
                .with_no_client_auth()
        }
        Trust::Ca(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            let mut n = 0;
            for c in CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| format!("not a PEM certificate: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("not a usable CA certificate: {e}"))?;
                n += 1;
            }
            if n == 0 {
                return Err("no PEM certificate in it".into());
            }
            b.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Insecure => b
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
            .with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![if http2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    Ok(Arc::new(cfg))
}

/// The TLS handshake over a connected socket; errors are kinds a report counts.
pub(crate) async fn connect(
    cfg: &Arc<ClientConfig>,
    host: &str,
    stream: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("tls: {host:?} is not a server name"))?;
    tokio_rustls::TlsConnector::from(cfg.clone())
        .connect(name, stream)
        .await
        .map_err(
            |e| match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                Some(rustls::Error::InvalidCertificate(c)) => format!("tls: certificate: {c:?}"),
                Some(other) => format!("tls: {other}"),
                None => format!("tls: {}", e.kind()),
            },
        )
}

/// Accepts any certificate (`--insecure`), still checking the handshake's signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
