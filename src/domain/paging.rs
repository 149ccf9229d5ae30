//! Unary list paging: page sizes and opaque page tokens bound to the query they belong to.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
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

/// The token that resumes the query `fingerprint` after `cursor`.
pub fn encode_token<C: Serialize>(fingerprint: &str, cursor: &C) -> String {
    let token = Token {
        q: fingerprint.to_owned(),
        c: cursor,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// The cursor in `token`, which must belong to the query `fingerprint`; `None` for the
/// first page (an empty token).
pub fn decode_token<C: DeserializeOwned>(token: &str, fingerprint: &str) -> Result<Option<C>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("page_token", "is not a page token of this list");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
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
}
