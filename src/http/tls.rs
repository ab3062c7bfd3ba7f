//! TLS termination: the certificate and key (and, for mutual TLS, the CA bundle
//! client certificates must chain to) read from PEM files once at start-up and
//! turned into a rustls server configuration.
//!
//! Mutual TLS decides which machines may open a connection, nothing more: the
//! bearer token (or session cookie) still decides who the caller is.
//!
//! Errors name the file and what is wrong with it, never its contents: a key
//! file's bytes do not reach a message or a log line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// Where TLS's PEM files are. Both `cert` and `key`, or neither (plain HTTP);
/// `client_ca` only with them. `Config::validate` refuses anything else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server's certificate chain, leaf first (`BACKPLANE_TLS_CERT`).
    pub cert: Option<PathBuf>,
    /// The certificate's private key: PKCS#8, PKCS#1 or SEC1 (`BACKPLANE_TLS_KEY`).
    pub key: Option<PathBuf>,
    /// CA certificates every client certificate must chain to; when set, a
    /// connection without such a certificate fails its handshake
    /// (`BACKPLANE_TLS_CLIENT_CA`).
    pub client_ca: Option<PathBuf>,
}

impl TlsSettings {
    /// Whether this server terminates TLS (both files are set).
    pub fn enabled(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }
}

/// Why the TLS files cannot be used. Each message names the setting and the
/// file, never what the file holds.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {setting} {}", path.display())]
    Read {
        setting: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{setting} {} holds no usable PEM certificate: {problem}", path.display())]
    Certificate {
        setting: &'static str,
        path: PathBuf,
        problem: &'static str,
    },
    #[error(
        "BACKPLANE_TLS_KEY {} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {problem}",
        path.display()
    )]
    Key {
        path: PathBuf,
        problem: &'static str,
    },
    /// rustls refused the pair: the key does not fit the certificate, or is of
    /// a kind it cannot sign with. rustls's messages carry no key material.
    #[error(
        "the TLS certificate {} and key {} cannot be used together: {source}",
        cert.display(),
        key.display()
    )]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("BACKPLANE_TLS_CLIENT_CA {}: {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },
    /// Both files must be set; `Config::validate` says so first.
    #[error("TLS needs both BACKPLANE_TLS_CERT and BACKPLANE_TLS_KEY")]
    Incomplete,
}

/// The rustls configuration for `settings`, or `None` when TLS is off.
/// HTTP/1.1 only is offered over ALPN: the server speaks nothing else.
pub fn server_config(
    settings: &TlsSettings,
) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    let (cert_path, key_path) = match (&settings.cert, &settings.key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => return Err(TlsError::Incomplete),
    };
    let chain = certificates("BACKPLANE_TLS_CERT", cert_path)?;
    let key = private_key(key_path)?;

    // ring, named here rather than taken from a process-wide default, so a
    // second provider appearing in the dependency tree changes nothing.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Pair {
            cert: cert_path.clone(),
            key: key_path.clone(),
            source,
        })?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca_path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("BACKPLANE_TLS_CLIENT_CA", ca_path)? {
                roots.add(cert).map_err(|err| TlsError::ClientCa {
                    path: ca_path.clone(),
                    reason: format!("a certificate is not a usable CA: {err}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| TlsError::ClientCa {
                    path: ca_path.clone(),
                    reason: err.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Pair {
            cert: cert_path.clone(),
            key: key_path.clone(),
            source,
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        setting,
        path: path.to_owned(),
        source,
    })
}

fn certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(setting, path)?;
    let problem = |problem| TlsError::Certificate {
        setting,
        path: path.to_owned(),
        problem,
    };
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| problem(pem_problem(&err)))?;
    if chain.is_empty() {
        return Err(problem("no `BEGIN CERTIFICATE` section"));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("BACKPLANE_TLS_KEY", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| TlsError::Key {
        path: path.to_owned(),
        problem: match err {
            pem::Error::NoItemsFound => "no `BEGIN PRIVATE KEY` section",
            other => pem_problem(&other),
        },
    })
}

/// What is wrong with a PEM file, in words that quote none of it (the
/// parser's own messages may repeat a line or a byte of the file).
fn pem_problem(err: &pem::Error) -> &'static str {
    match err {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section's base64 is damaged",
        pem::Error::NoItemsFound => "no PEM section of the expected kind",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "not readable as PEM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }

    fn settings(cert: &Path, key: &Path) -> TlsSettings {
        TlsSettings {
            cert: Some(cert.to_owned()),
            key: Some(key.to_owned()),
            client_ca: None,
        }
    }

    fn error(settings: &TlsSettings) -> String {
        match server_config(settings) {
            Ok(_) => String::from("no error"),
            Err(err) => format!("{err} / {err:?}"),
        }
    }

    #[test]
    fn errors_name_the_file_and_never_its_contents() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dir = dir.path();
        let secret = "c2VjcmV0LWtleS1tYXRlcmlhbA";
        let damaged_key = write(
            dir,
            "key.pem",
            &format!("-----BEGIN PRIVATE KEY-----\n{secret}!!\n-----END PRIVATE KEY-----\n"),
        );
        let generated =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let cert = write(dir, "cert.pem", &generated.cert.pem());

        let err = error(&settings(&dir.join("missing.pem"), &damaged_key));
        assert!(err.contains("cannot read BACKPLANE_TLS_CERT"), "{err}");
        assert!(err.contains("missing.pem"), "{err}");

        let not_pem = write(dir, "not-pem.pem", "not a certificate");
        let err = error(&settings(&not_pem, &damaged_key));
        assert!(
            err.contains("not-pem.pem holds no usable PEM certificate"),
            "{err}"
        );

        let err = error(&settings(&cert, &damaged_key));
        assert!(
            err.contains("key.pem holds no usable PEM private key"),
            "{err}"
        );
        assert!(!err.contains(secret), "{err}");

        let other =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let other_key = write(dir, "other-key.pem", &other.signing_key.serialize_pem());
        let err = error(&settings(&cert, &other_key));
        assert!(err.contains("cannot be used together"), "{err}");

        let key = write(dir, "good-key.pem", &generated.signing_key.serialize_pem());
        assert!(matches!(server_config(&settings(&cert, &key)), Ok(Some(_))));
        assert!(matches!(server_config(&TlsSettings::default()), Ok(None)));

        let mut with_ca = settings(&cert, &key);
        with_ca.client_ca = Some(not_pem);
        let err = error(&with_ca);
        assert!(err.contains("BACKPLANE_TLS_CLIENT_CA"), "{err}");
    }
}
