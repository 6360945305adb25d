//! Encryption at rest: AES-256-GCM with a fresh random nonce per message and associated data that
//! binds a ciphertext to where it is stored, plus loading (or first-time creation) of the key.
//!
//! Sealed values are text: `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id lets a
//! later key rotation tell which key sealed a value without trying them all.
use std::{
    io::Write,
    path::{Path, PathBuf},
};

use aes_gcm::{
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
    Aes256Gcm, Key, Nonce,
};
use base64::{engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

const FORMAT_VERSION: &str = "v1";
const NONCE_LEN: usize = 12;
pub const KEY_FILE_NAME: &str = ".encryption.key";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the value was sealed with another key (key id {0})")]
    UnknownKey(String),
    #[error("the value failed authentication: tampered, moved, or sealed with another key")]
    Authentication,
}

/// An AES-256-GCM key with its id. `Debug` never shows the key.
pub struct Cipher {
    aead: Aes256Gcm,
    key_id: String,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("key_id", &self.key_id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Cipher {
    pub fn new(key: &SecretBox<[u8; 32]>) -> Self {
        let key_bytes = key.expose_secret();
        let digest = Sha256::new_with_prefix(b"pulse key id\0")
            .chain_update(key_bytes)
            .finalize();
        let key_id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key_bytes)),
            key_id,
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `plaintext`; `aad` names where the value lives (e.g. `session:<id>:refresh_token`)
    /// so a ciphertext copied elsewhere fails to open.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption with a valid key and in-memory buffers cannot fail for inputs under 64 GiB.
        let ciphertext = self
            .aead
            .encrypt(&nonce, Payload { msg: plaintext, aad })
            .unwrap_or_default();
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        format!("{FORMAT_VERSION}.{}.{}", self.key_id, URL_SAFE_NO_PAD.encode(blob))
    }

    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(FORMAT_VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Malformed);
        };
        if key_id != self.key_id {
            return Err(CryptoError::UnknownKey(key_id.to_owned()));
        }
        let blob = URL_SAFE_NO_PAD.decode(body).map_err(|_| CryptoError::Malformed)?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        self.aead
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad })
            .map_err(|_| CryptoError::Authentication)
    }

    pub fn open_string(&self, sealed: &str, aad: &[u8]) -> Result<SecretString, CryptoError> {
        let bytes = self.open(sealed, aad)?;
        String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Malformed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("PULSE_ENCRYPTION_KEY must be the base64 encoding of exactly 32 bytes (it decodes to {0} bytes). Generate one with: head -c 32 /dev/urandom | base64")]
    WrongLength(usize),
    #[error("PULSE_ENCRYPTION_KEY is not valid base64. Generate one with: head -c 32 /dev/urandom | base64")]
    NotBase64,
    #[error("the key file {path} is not a base64-encoded 32-byte key; restore the original file or set PULSE_ENCRYPTION_KEY")]
    CorruptFile { path: PathBuf },
    #[error("cannot read or write the key file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Where the key came from, for the start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    Environment,
    ExistingFile(PathBuf),
    CreatedFile(PathBuf),
}

/// A key with where it came from.
pub type LoadedKey = (SecretBox<[u8; 32]>, KeyOrigin);

/// Decodes a base64 key as given in `PULSE_ENCRYPTION_KEY`.
pub fn decode_key(encoded: &str) -> Result<SecretBox<[u8; 32]>, KeyError> {
    let bytes = STANDARD
        .decode(encoded.trim())
        .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim()))
        .map_err(|_| KeyError::NotBase64)?;
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::WrongLength(bytes.len()))?;
    Ok(SecretBox::new(Box::new(key)))
}

/// The key from the environment, else from `<data_dir>/.encryption.key`, else — only when
/// `may_create` (no encrypted data exists yet) — a new random key written there with mode 0600.
pub fn load_key(
    data_dir: &Path,
    from_env: Option<&SecretString>,
    may_create: bool,
) -> Result<Option<LoadedKey>, KeyError> {
    if let Some(encoded) = from_env {
        return Ok(Some((decode_key(encoded.expose_secret())?, KeyOrigin::Environment)));
    }
    let path = data_dir.join(KEY_FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = decode_key(&text).map_err(|_| KeyError::CorruptFile { path: path.clone() })?;
            Ok(Some((key, KeyOrigin::ExistingFile(path))))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if !may_create {
                return Ok(None);
            }
            let mut key = [0u8; 32];
            OsRng.fill_bytes(&mut key);
            write_private_file(&path, STANDARD.encode(key).as_bytes()).map_err(|source| KeyError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(Some((SecretBox::new(Box::new(key)), KeyOrigin::CreatedFile(path))))
        }
        Err(source) => Err(KeyError::Io { path, source }),
    }
}

/// Writes a file readable only by its owner (0600), refusing to follow an existing file's mode.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(byte: u8) -> Cipher {
        Cipher::new(&SecretBox::new(Box::new([byte; 32])))
    }

    #[test]
    fn round_trip_with_fresh_nonce() {
        let c = cipher(7);
        let a = c.seal(b"refresh-token-value", b"session:1:refresh_token");
        let b = c.seal(b"refresh-token-value", b"session:1:refresh_token");
        assert_ne!(a, b, "every seal uses a fresh nonce");
        assert!(!a.contains("refresh-token-value"));
        assert_eq!(
            c.open(&a, b"session:1:refresh_token").as_deref(),
            Ok(&b"refresh-token-value"[..])
        );
        assert!(a.starts_with(&format!("v1.{}.", c.key_id())));
    }

    #[test]
    fn tampering_is_detected() {
        let c = cipher(7);
        let sealed = c.seal(b"secret", b"aad");
        let mut blob = URL_SAFE_NO_PAD
            .decode(sealed.rsplit('.').next().unwrap_or_default())
            .unwrap_or_default();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        let tampered = format!("v1.{}.{}", c.key_id(), URL_SAFE_NO_PAD.encode(blob));
        assert_eq!(c.open(&tampered, b"aad"), Err(CryptoError::Authentication));
        assert_eq!(c.open("v1.zz", b"aad"), Err(CryptoError::Malformed));
        assert_eq!(c.open("garbage", b"aad"), Err(CryptoError::Malformed));
    }

    #[test]
    fn wrong_associated_data_is_refused() {
        let c = cipher(7);
        let sealed = c.seal(b"secret", b"session:1:refresh_token");
        assert_eq!(
            c.open(&sealed, b"session:2:refresh_token"),
            Err(CryptoError::Authentication)
        );
    }

    #[test]
    fn another_key_is_recognised_by_its_id() {
        let sealed = cipher(7).seal(b"secret", b"aad");
        assert!(matches!(
            cipher(8).open(&sealed, b"aad"),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", cipher(0x41));
        assert!(shown.contains("redacted"));
        assert!(!shown.contains("65"), "{shown}");
    }

    #[test]
    fn env_key_must_be_32_bytes_of_base64() {
        assert!(matches!(decode_key("c2hvcnQ="), Err(KeyError::WrongLength(5))));
        assert!(matches!(decode_key("not base64!!"), Err(KeyError::NotBase64)));
        assert!(decode_key(&STANDARD.encode([1u8; 32])).is_ok());
    }

    #[test]
    fn key_file_is_created_once_with_owner_only_mode() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        assert!(
            load_key(dir.path(), None, false)?.is_none(),
            "never created without permission"
        );
        let (first, origin) = load_key(dir.path(), None, true)?.ok_or("no key")?;
        assert!(matches!(origin, KeyOrigin::CreatedFile(_)));
        let (second, origin) = load_key(dir.path(), None, true)?.ok_or("no key")?;
        assert!(matches!(origin, KeyOrigin::ExistingFile(_)));
        assert_eq!(first.expose_secret(), second.expose_secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE_NAME))?.permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(KEY_FILE_NAME), "short")?;
        assert!(matches!(
            load_key(dir.path(), None, true),
            Err(KeyError::CorruptFile { .. })
        ));
        Ok(())
    }
}
