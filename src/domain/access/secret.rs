//! API token secrets: made at random, stored only as their hash.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The shortest secret accepted, so that a bootstrap token cannot be guessed.
pub const MIN_SECRET_LENGTH: usize = 20;

/// A new random secret: `clt_` and 32 random bytes in URL-safe base64.
pub fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Internal(format!("no randomness for a token: {e}")))?;
    Ok(format!("clt_{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The hash a secret is stored as. Secrets are long and random, so SHA-256 suffices.
pub fn hash_secret(secret: &str) -> String {
    // Every call hashes its token: a string formatted per byte was a seventh of the server's
    // work on a one-row read (callgrind, BENCHMARKS.md).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(secret.as_bytes()) {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_differ() {
        let one = new_secret().unwrap();
        let two = new_secret().unwrap();
        assert!(one.starts_with("clt_") && one.len() >= 40);
        assert_ne!(one, two);
        assert_ne!(hash_secret(&one), hash_secret(&two));
        assert_eq!(hash_secret(&one).len(), 64);
    }

    /// Stored tokens are found by this hash: its form (SHA-256, lower-case hex) never changes.
    #[test]
    fn a_secret_hashes_to_the_lower_case_hex_of_its_sha256() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
