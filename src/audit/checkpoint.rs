//! Signed checkpoints of the audit chain, kept outside the database.
//!
//! The chain (`store::audit`) proves that no row was changed in place, but
//! whoever can write the database can delete its newest rows, or rewrite a
//! stretch and hash every row after it again. A checkpoint is the chain's head
//! as an instance saw it — the row's id (its sequence number), its hash, the
//! time, the instance — signed with Ed25519, appended as one JSON line to
//! `DIR/<instance>.ndjson` and written to the log stream (for a SIEM). Against
//! checkpoints, `backplane audit verify --checkpoints DIR --public-key FILE`
//! finds a chain shorter than a checkpoint says, a checkpoint's hash that is
//! not the chain's at its sequence, and a checkpoint whose signature is not
//! the key's.
//!
//! The key is a PKCS#8 PEM file (`backplane audit keygen`, or
//! `openssl genpkey -algorithm ed25519`); the public key, SPKI PEM, is all a
//! verifier needs.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// What a checkpoint vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The chain's head: the row `sequence` has `hash`, and no row after it
    /// existed when it was signed.
    Head,
    /// The rows up to `sequence` were pruned; `hash` was the last one's, which
    /// the first remaining row follows.
    Pruned,
}

/// One signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub kind: Kind,
    pub instance: String,
    /// The row's id.
    pub sequence: i64,
    pub hash: String,
    pub time: DateTime<Utc>,
    /// Ed25519 over [`Checkpoint::message`], base64.
    pub signature: String,
}

impl Checkpoint {
    /// The bytes signed: every field but the signature, unambiguously.
    fn message(
        kind: Kind,
        instance: &str,
        sequence: i64,
        hash: &str,
        time: &DateTime<Utc>,
    ) -> String {
        format!(
            "backplane audit checkpoint v1\n{}\n{instance}\n{sequence}\n{hash}\n{}",
            match kind {
                Kind::Head => "head",
                Kind::Pruned => "pruned",
            },
            time.to_rfc3339_opts(SecondsFormat::Micros, true)
        )
    }

    pub fn sign(
        key: &SigningKey,
        kind: Kind,
        instance: &str,
        sequence: i64,
        hash: &str,
        time: DateTime<Utc>,
    ) -> Self {
        // Signed as it is written: in microseconds.
        let time = DateTime::parse_from_rfc3339(&time.to_rfc3339_opts(SecondsFormat::Micros, true))
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(time);
        let signature = key.sign(Self::message(kind, instance, sequence, hash, &time).as_bytes());
        Checkpoint {
            kind,
            instance: instance.to_owned(),
            sequence,
            hash: hash.to_owned(),
            time,
            signature: BASE64.encode(signature.to_bytes()),
        }
    }

    /// Whether `key` signed exactly this checkpoint.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let Ok(bytes) = BASE64.decode(&self.signature) else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(&bytes) else {
            return false;
        };
        let message = Self::message(
            self.kind,
            &self.instance,
            self.sequence,
            &self.hash,
            &self.time,
        );
        key.verify(message.as_bytes(), &signature).is_ok()
    }
}

/// Writes a new key pair: `prefix` (the private key, PKCS#8 PEM, readable by
/// its owner only) and `prefix.pub` (the public key, SPKI PEM). Refuses to
/// overwrite either.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf), String> {
    let public = PathBuf::from(format!("{}.pub", prefix.display()));
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let private_pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| format!("encoding the key: {e}"))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .map_err(|e| format!("encoding the public key: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(prefix)
        .map_err(|e| format!("{}: {e}", prefix.display()))?;
    file.write_all(private_pem.as_bytes())
        .map_err(|e| format!("{}: {e}", prefix.display()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&public)
        .and_then(|mut f| f.write_all(public_pem.as_bytes()))
        .map_err(|e| format!("{}: {e}", public.display()))?;
    Ok((prefix.to_owned(), public))
}

/// The signing key in `path` (PKCS#8 PEM).
pub fn signing_key(path: &Path) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| {
        format!(
            "{}: not an Ed25519 private key in PKCS#8 PEM ({e})",
            path.display()
        )
    })
}

/// The public key in `path` (SPKI PEM).
pub fn public_key(path: &Path) -> Result<VerifyingKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    VerifyingKey::from_public_key_pem(&text)
        .map_err(|e| format!("{}: not an Ed25519 public key in PEM ({e})", path.display()))
}

/// One line of a checkpoint file, read.
#[derive(Debug)]
pub struct Found {
    pub file: PathBuf,
    pub line: usize,
    pub checkpoint: Result<Checkpoint, String>,
}

/// Every checkpoint in the `*.ndjson` files of `dir`, in file and line order.
pub fn read_dir(dir: &Path) -> Result<Vec<Found>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            found.push(Found {
                file: file.clone(),
                line: i + 1,
                checkpoint: serde_json::from_str(line).map_err(|e| e.to_string()),
            });
        }
    }
    Ok(found)
}

/// Where and how an instance writes its checkpoints.
#[derive(Clone, Debug)]
pub struct Settings {
    pub key_file: PathBuf,
    /// The append-only directory; the log stream gets each checkpoint too.
    pub dir: Option<PathBuf>,
    /// This instance's name (its file's).
    pub instance: String,
    /// A checkpoint after this many events written by this instance …
    pub every_events: u64,
    /// … or this long after the last one, when the head moved.
    pub every: Duration,
}

/// Signs and writes this instance's checkpoints.
pub struct Checkpointer {
    store: Store,
    key: SigningKey,
    dir: Option<PathBuf>,
    instance: String,
    /// The head of the last checkpoint written.
    last: tokio::sync::Mutex<Option<(i64, String)>>,
}

impl Checkpointer {
    pub fn new(store: Store, settings: &Settings) -> Result<Self, String> {
        let key = signing_key(&settings.key_file)?;
        if let Some(dir) = &settings.dir {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        if settings.instance.is_empty()
            || !settings
                .instance
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "the instance name {:?} must be letters, digits, `-`, `_` and `.`",
                settings.instance
            ));
        }
        Ok(Self {
            store,
            key,
            dir: settings.dir.clone(),
            instance: settings.instance.clone(),
            last: tokio::sync::Mutex::new(None),
        })
    }

    /// Signs the chain's head and writes it, unless it is the last one
    /// written; returns the checkpoint written.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, String> {
        let mut last = self.last.lock().await;
        let Some((sequence, hash)) = crate::store::audit::head(&self.store)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        if last
            .as_ref()
            .is_some_and(|(s, h)| *s == sequence && *h == hash)
        {
            return Ok(None);
        }
        let checkpoint = Checkpoint::sign(
            &self.key,
            Kind::Head,
            &self.instance,
            sequence,
            &hash,
            Utc::now(),
        );
        self.write(&checkpoint)?;
        *last = Some((sequence, hash));
        Ok(Some(checkpoint))
    }

    /// Signs and writes a checkpoint of a prune: rows up to `sequence` are
    /// removed, the last with `hash`.
    pub fn pruned(&self, sequence: i64, hash: &str) -> Result<Checkpoint, String> {
        let checkpoint = Checkpoint::sign(
            &self.key,
            Kind::Pruned,
            &self.instance,
            sequence,
            hash,
            Utc::now(),
        );
        self.write(&checkpoint)?;
        Ok(checkpoint)
    }

    /// Appends `checkpoint` to this instance's file and logs it.
    pub fn write(&self, checkpoint: &Checkpoint) -> Result<(), String> {
        let line = serde_json::to_string(checkpoint).map_err(|e| e.to_string())?;
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{}.ndjson", self.instance));
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            file.write_all(format!("{line}\n").as_bytes())
                .and_then(|_| file.sync_data())
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        tracing::info!(
            target: "backplane::audit::checkpoint",
            kind = ?checkpoint.kind,
            instance = %checkpoint.instance,
            sequence = checkpoint.sequence,
            hash = %checkpoint.hash,
            time = %checkpoint.time.to_rfc3339_opts(SecondsFormat::Micros, true),
            signature = %checkpoint.signature,
            "audit checkpoint"
        );
        Ok(())
    }

    /// Checkpoints every `settings.every`, or sooner once `written` (events
    /// this instance's writer committed) grew by `settings.every_events`,
    /// until `stop` resolves; then once more.
    pub async fn run(
        self: Arc<Self>,
        settings: Settings,
        written: Arc<AtomicU64>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let tick = Duration::from_millis(200).min(settings.every);
        let mut since = tokio::time::Instant::now();
        let mut at = written.load(Ordering::Relaxed);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(tick) => {}
            }
            let now = written.load(Ordering::Relaxed);
            if now.saturating_sub(at) < settings.every_events.max(1)
                && since.elapsed() < settings.every
            {
                continue;
            }
            if let Err(err) = self.checkpoint().await {
                tracing::error!(error = %err, "an audit checkpoint could not be written");
            }
            since = tokio::time::Instant::now();
            at = now;
        }
        match self.checkpoint().await {
            Ok(_) => tracing::info!("the audit chain's last checkpoint is written"),
            Err(err) => {
                tracing::error!(error = %err, "the last audit checkpoint could not be written")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_under_its_key_only_and_unchanged() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let other = SigningKey::generate(&mut rand::rngs::OsRng);
        let c = Checkpoint::sign(&key, Kind::Head, "a", 42, "ab", Utc::now());
        assert!(c.verify(&key.verifying_key()));
        assert!(!c.verify(&other.verifying_key()));
        let line = serde_json::to_string(&c).expect("json");
        let back: Checkpoint = serde_json::from_str(&line).expect("back");
        assert!(back.verify(&key.verifying_key()), "{line}");
        for changed in [
            Checkpoint {
                sequence: 43,
                ..c.clone()
            },
            Checkpoint {
                hash: "ac".into(),
                ..c.clone()
            },
            Checkpoint {
                instance: "b".into(),
                ..c.clone()
            },
            Checkpoint {
                kind: Kind::Pruned,
                ..c.clone()
            },
        ] {
            assert!(!changed.verify(&key.verifying_key()), "{changed:?}");
        }
    }
}
