//! TLS for the web server, as Galène does it: rustls with the `aws-lc-rs` provider, TLS 1.2 and
//! 1.3, the certificate from `<data>/cert.pem` + `<data>/key.pem`, checked again on every
//! handshake so a renewed certificate is used without a restart. When neither file exists a
//! self-signed certificate is made in memory; when only one exists handshakes fail with a
//! clear log message.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Builds the server configuration for certificates in `data_dir`. Fails when the
/// certificate files are unusable right now (only one of them exists, or they do not parse),
/// so that a misconfiguration is reported at start-up rather than at the first handshake.
pub fn server_config(data_dir: &Path) -> io::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let resolver = CertificateFiles::new(data_dir, Arc::clone(&provider));
    resolver
        .current()
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Size and modification time: a file changed when either differs.
type Stamp = (SystemTime, u64);

/// Resolves the server certificate from the files, re-reading them when they change.
#[derive(Debug)]
struct CertificateFiles {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    /// The certificate read from the files, with the stamps of cert.pem and key.pem.
    from_files: Option<(Stamp, Stamp, Arc<CertifiedKey>)>,
    /// The self-signed certificate, made once when first needed.
    self_signed: Option<Arc<CertifiedKey>>,
}

impl CertificateFiles {
    fn new(data_dir: &Path, provider: Arc<CryptoProvider>) -> CertificateFiles {
        CertificateFiles {
            cert_path: data_dir.join("cert.pem"),
            key_path: data_dir.join("key.pem"),
            provider,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The certificate to use now, or why there is none.
    fn current(&self) -> Result<Arc<CertifiedKey>, String> {
        // A poisoned lock only means another handshake panicked; the cache is still valid.
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let cert = stamp(&self.cert_path)?;
        let key = stamp(&self.key_path)?;
        match (cert, key) {
            (None, None) => {
                if let Some(key) = &cache.self_signed {
                    return Ok(Arc::clone(key));
                }
                log::info!(
                    "No {} and {}: using a self-signed certificate",
                    self.cert_path.display(),
                    self.key_path.display()
                );
                let key = Arc::new(self.self_signed()?);
                cache.self_signed = Some(Arc::clone(&key));
                Ok(key)
            }
            (Some(cert), Some(key)) => {
                if let Some((c, k, loaded)) = &cache.from_files
                    && *c == cert
                    && *k == key
                {
                    return Ok(Arc::clone(loaded));
                }
                let loaded = Arc::new(self.load()?);
                log::info!("Loaded the certificate from {}", self.cert_path.display());
                cache.from_files = Some((cert, key, Arc::clone(&loaded)));
                Ok(loaded)
            }
            _ => Err(format!(
                "only one of cert.pem and key.pem exists in {}",
                self.cert_path
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )),
        }
    }

    fn load(&self) -> Result<CertifiedKey, String> {
        let cert_pem =
            fs::read(&self.cert_path).map_err(|e| format!("{}: {e}", self.cert_path.display()))?;
        let key_pem =
            fs::read(&self.key_path).map_err(|e| format!("{}: {e}", self.key_path.display()))?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", self.cert_path.display()))?;
        if chain.is_empty() {
            return Err(format!(
                "{}: no certificate found",
                self.cert_path.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("{}: {e}", self.key_path.display()))?;
        let signing_key = self
            .provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("{}: {e}", self.key_path.display()))?;
        Ok(CertifiedKey::new(chain, signing_key))
    }

    fn self_signed(&self) -> Result<CertifiedKey, String> {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| format!("cannot make a self-signed certificate: {e}"))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            generated.signing_key.serialize_der(),
        ));
        let signing_key = self
            .provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("self-signed key: {e}"))?;
        Ok(CertifiedKey::new(
            vec![generated.cert.der().clone()],
            signing_key,
        ))
    }
}

/// The stamp of a file, `None` if it does not exist.
fn stamp(path: &Path) -> Result<Option<Stamp>, String> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some((
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

impl ResolvesServerCert for CertificateFiles {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.current() {
            Ok(key) => Some(key),
            Err(why) => {
                log::error!("TLS handshake refused: {why}");
                None
            }
        }
    }
}
