//! The bearer secret of a request. Verifying it is the access module's work
//! ([`crate::domain::access::Authenticator`]).

use crate::{domain::access::unauthenticated, error::Result};

/// The secret of an `authorization: Bearer <secret>` header value.
pub fn bearer(header: Option<&http::HeaderValue>) -> Result<&str> {
    let Some(value) = header else {
        return Err(unauthenticated(
            "MISSING_CREDENTIALS",
            "send an API token as `authorization: Bearer <token>`",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|text| {
            let (scheme, secret) = text.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
        })
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| {
            unauthenticated(
                "MALFORMED_CREDENTIALS",
                "the authorization header must be `Bearer <token>`",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_required() {
        let header = |text: &str| http::HeaderValue::from_str(text).unwrap();
        assert_eq!(bearer(Some(&header("Bearer abc"))).unwrap(), "abc");
        assert_eq!(bearer(Some(&header("bearer  abc "))).unwrap(), "abc");
        for bad in ["abc", "Basic abc", "Bearer ", "Bearer"] {
            assert!(bearer(Some(&header(bad))).is_err(), "{bad:?}");
        }
        assert!(bearer(None).is_err());
    }
}
