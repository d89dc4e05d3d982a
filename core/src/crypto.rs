//! Secrets at rest and credentials: AEAD encryption keyed from the server's secret key,
//! argon2id password hashes, random tokens and their SHA-256 lookup hashes.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result};

const NONCE_LEN: usize = 24;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Keys derived from `SLUICE_SECRET_KEY`, one per purpose.
#[derive(Clone)]
pub struct Keyring {
    cipher: XChaCha20Poly1305,
    mac_key: [u8; 32],
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring([redacted])")
    }
}

fn derive(secret: &str, purpose: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"sluice/v1/");
    hasher.update(purpose.as_bytes());
    hasher.update([0u8]);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

impl Keyring {
    /// Derives the encryption and MAC keys from the server's secret key.
    pub fn new(secret_key: &SecretString) -> Keyring {
        let secret = secret_key.expose_secret();
        let enc = derive(secret, "encryption");
        Keyring {
            cipher: XChaCha20Poly1305::new(&enc.into()),
            mac_key: derive(secret, "mac"),
        }
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the row it belongs to) so a ciphertext
    /// moved to another row does not decrypt. Output: nonce || ciphertext+tag.
    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::Crypto("encryption failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Reverses [`Keyring::encrypt`]; fails for a wrong key, context or tampered bytes.
    pub fn decrypt(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Crypto("ciphertext too short"));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Crypto("bad nonce"))?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::Crypto("decryption failed"))
    }

    /// HMAC-SHA256 of `data` under the server's MAC key, hex-encoded (e.g. CSRF tokens).
    pub fn mac_hex(&self, data: &str) -> String {
        hmac_sha256_hex(&self.mac_key, data.as_bytes())
    }
}

/// HMAC-SHA256 of `data` under `key`, hex-encoded.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    };
    mac.update(data);
    hex(&mac.finalize().into_bytes())
}

#[cold]
fn unreachable_hmac() -> ! {
    panic!("HMAC rejected a key length, which it never does")
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a token, hex-encoded: what is stored instead of session ids and API tokens.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Compares two strings in constant time.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// `bytes` random bytes, base62-encoded (about 1.34 characters per byte).
pub fn random_base62(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    base62(&raw)
}

/// Base62 of a big-endian number, with enough digits to hold every input of this length.
fn base62(raw: &[u8]) -> String {
    let digits = (raw.len() * 8 * 1000).div_ceil(5954); // log2(62) ≈ 5.954
    let mut number = raw.to_vec();
    let mut out = Vec::with_capacity(digits);
    for _ in 0..digits {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 62) as u8;
            remainder = value % 62;
        }
        out.push(BASE62[remainder as usize]);
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// An argon2id PHC string for `password` with a random salt. CPU-heavy: call it off the
/// async executor (`spawn_blocking`).
pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|_| Error::Crypto("password hashing failed"))
}

/// Whether `password` matches the PHC string `hash`. CPU-heavy, like [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keyring(secret: &str) -> Keyring {
        Keyring::new(&SecretString::from(secret.to_owned()))
    }

    #[test]
    fn encryption_round_trips_only_with_the_same_key_and_context() {
        let keys = keyring("0123456789abcdef0123456789abcdef");
        let sealed = keys.encrypt(b"s3cr3t value", "project:1:TOKEN").unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"s3cr3t"),
            "plaintext visible"
        );
        assert_eq!(
            keys.decrypt(&sealed, "project:1:TOKEN").unwrap(),
            b"s3cr3t value"
        );
        assert!(
            keys.decrypt(&sealed, "project:2:TOKEN").is_err(),
            "context not bound"
        );
        assert!(
            keyring("another key of at least 32 chars!!")
                .decrypt(&sealed, "project:1:TOKEN")
                .is_err()
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(keys.decrypt(&tampered, "project:1:TOKEN").is_err());
        assert_ne!(
            sealed,
            keys.encrypt(b"s3cr3t value", "project:1:TOKEN").unwrap(),
            "nonce reused"
        );
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery staple", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn random_tokens_are_base62_of_the_requested_strength() {
        let token = random_base62(32);
        assert_eq!(token.len(), 43);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(token, random_base62(32));
        assert_eq!(base62(&[0, 61]), "00Z".replace('Z', "z"));
        assert_eq!(hash_token("abc").len(), 64);
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd"));
    }
}
