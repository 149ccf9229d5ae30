//! Unary list paging: page sizes and opaque page tokens bound to the query they belong to.
//!
//! A token is its cursor in JSON and an HMAC-SHA256 of it under the page-token key: a client
//! cannot forge or edit one (a cursor holding a NUL, or one pointing past what the query may
//! see), and any replica with the same key resumes what another began. The key comes from
//! configuration ([`use_key`], `CLIENTELE_PAGE_TOKEN_KEY`); without one, each process makes
//! its own, and a token works only on the replica that issued it.

use std::sync::{LazyLock, PoisonError, RwLock};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Page size when the request gives none.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Largest page size; larger requests are capped.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Token for the next page; empty on the last one.
    pub next_page_token: String,
}

/// Turns `items` (fetched with one more than `limit` rows) into a page whose token resumes
/// after the last item shown.
pub fn page<T, C: Serialize>(
    mut items: Vec<T>,
    limit: u64,
    fingerprint: &str,
    cursor_after: impl Fn(&T) -> C,
) -> Page<T> {
    let next_page_token = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .map(|last| encode_token(fingerprint, &cursor_after(last)))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Page {
        items,
        next_page_token,
    }
}

/// The page size a request asks for: 0 → the default, above the maximum → the maximum,
/// negative → `InvalidArgument`.
pub fn page_size(raw: i32) -> Result<u64> {
    match raw {
        ..0 => Err(Error::invalid("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

/// A short hash of the query's filters and order: a token only resumes the query it came from.
pub fn fingerprint(query: &impl Serialize) -> String {
    let encoded = serde_json::to_vec(query).unwrap_or_default();
    let digest = Sha256::digest(&encoded);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize, serde::Deserialize)]
struct Token<C> {
    /// The query's fingerprint.
    q: String,
    /// Where the previous page ended.
    c: C,
}

/// The signer of page tokens, keyed with SHA-256 of the configured key, or with random bytes
/// of this process until one is configured. Kept keyed: a token costs a clone and the hash
/// of its payload (the streamed ticket list signs one per ticket).
static SIGNER: LazyLock<RwLock<Hmac<Sha256>>> = LazyLock::new(|| {
    // The server sets its key before it serves (`use_key`); this one is for whatever signs
    // before that, and is as secret.
    let mut key = [0; 32];
    getrandom::fill(&mut key).expect("the system's randomness for a page token key");
    RwLock::new(keyed(&key))
});

fn keyed(key: &[u8; 32]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length")
}

/// The bytes of a signature kept in a token.
const SIGNATURE: usize = 16;

/// Makes the process's own key now, before any token is signed.
pub fn ensure_key() {
    LazyLock::force(&SIGNER);
}

/// Signs page tokens with `key` from now on (every replica must be given the same).
pub fn use_key(key: &str) {
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    *SIGNER.write().unwrap_or_else(PoisonError::into_inner) = keyed(&digest);
}

fn signer() -> Hmac<Sha256> {
    SIGNER
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The token that resumes the query `fingerprint` after `cursor`.
pub fn encode_token<C: Serialize>(fingerprint: &str, cursor: &C) -> String {
    let token = Token {
        q: fingerprint.to_owned(),
        c: cursor,
    };
    let payload = serde_json::to_vec(&token).unwrap_or_default();
    let mut signer = signer();
    signer.update(&payload);
    let signature = signer.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(&signature[..SIGNATURE])
    )
}

/// The cursor in `token`, which must belong to the query `fingerprint`; `None` for the
/// first page (an empty token).
pub fn decode_token<C: DeserializeOwned>(token: &str, fingerprint: &str) -> Result<Option<C>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("page_token", "is not a page token of this list");
    let (payload, signature) = token.split_once('.').ok_or_else(invalid)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
    let mut signer = signer();
    signer.update(&bytes);
    if signature.len() != SIGNATURE || signer.verify_truncated_left(&signature).is_err() {
        return Err(Error::invalid(
            "page_token",
            "is not a page token this service issued (edited, or signed with another key)",
        ));
    }
    let token: Token<C> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.q != fingerprint {
        return Err(Error::invalid(
            "page_token",
            "belongs to a query with other filters or another order",
        ));
    }
    Ok(Some(token.c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_cap_and_refuse_negatives() {
        assert_eq!(page_size(0).unwrap(), 50);
        assert_eq!(page_size(7).unwrap(), 7);
        assert_eq!(page_size(5000).unwrap(), 1000);
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn a_token_resumes_only_its_own_query() {
        let token = encode_token("aaaa", &("key", 3));
        let cursor: Option<(String, i32)> = decode_token(&token, "aaaa").unwrap();
        assert_eq!(cursor, Some(("key".to_owned(), 3)));
        assert!(decode_token::<(String, i32)>(&token, "bbbb").is_err());
        assert!(decode_token::<(String, i32)>("%%%", "aaaa").is_err());
    }

    #[test]
    fn an_edited_token_is_refused() {
        let token = encode_token("aaaa", &("key", 3));
        let (payload, signature) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"q":"aaaa","c":["k\u0000y",3]}"#);
        assert!(decode_token::<(String, i32)>(&format!("{forged}.{signature}"), "aaaa").is_err());
        assert!(decode_token::<(String, i32)>(payload, "aaaa").is_err());
        assert!(decode_token::<(String, i32)>(&format!("{payload}.AAAA"), "aaaa").is_err());
    }
}
