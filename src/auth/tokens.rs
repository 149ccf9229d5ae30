//! API token secrets and their verification, with a short-lived cache so that a call does not
//! cost a database round trip, while a revoked token still stops working within a second on
//! every replica.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Principal;
use crate::{
    clock::Clock,
    error::{Error, Result},
    metrics::Metrics,
    model::{Token, TokenOwner, Validity},
    store::{Store, TokenHolder},
};

/// How long a verified token is trusted before the database is asked again. It bounds how
/// long a revocation or an invalidated owner takes to reach every replica.
pub const CACHE_TTL: Duration = Duration::from_millis(500);
/// Beyond this many cached tokens the cache starts over, bounding its memory.
const CACHE_CAPACITY: usize = 100_000;
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
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the database said about a secret, when.
#[derive(Clone, Debug)]
struct Verdict {
    checked: Instant,
    found: Option<(Token, Option<Principal>)>,
}

/// Something whose change makes cached verdicts about it stale: a token, the agent or
/// customer holding tokens, or an organisation whose customers hold them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stale {
    /// One token (revoked).
    Token(Uuid),
    /// Every token of this agent (validity or rights changed).
    Agent(Uuid),
    /// Every token of this customer (validity, organisations, merged or deleted).
    Customer(Uuid),
    /// Every token of this organisation's customers (deactivated with them).
    Organisation(Uuid),
}

impl Verdict {
    /// What a change of makes this verdict stale.
    fn depends_on(&self) -> Vec<Stale> {
        let Some((token, principal)) = &self.found else {
            return Vec::new();
        };
        let mut on = vec![Stale::Token(token.id)];
        match token.owner {
            TokenOwner::Admin => {}
            TokenOwner::Agent(id) => on.push(Stale::Agent(id)),
            TokenOwner::Customer(id) => on.push(Stale::Customer(id)),
        }
        if let Some(Principal::Customer {
            organisation_ids, ..
        }) = principal
        {
            on.extend(organisation_ids.iter().copied().map(Stale::Organisation));
        }
        on
    }
}

/// Verdicts by secret hash, and when each thing they depend on last changed here.
#[derive(Debug, Default)]
struct Cache {
    verdicts: HashMap<String, Verdict>,
    /// Kept for [`CACHE_TTL`]: a verdict older than that is not used anyway.
    changed: HashMap<Stale, Instant>,
}

impl Cache {
    /// The verdict on `hash`, if it is recent and nothing it depends on changed since.
    fn fresh(&self, hash: &str) -> Option<Verdict> {
        let verdict = self.verdicts.get(hash)?;
        let fresh = verdict.checked.elapsed() < CACHE_TTL
            && verdict.depends_on().iter().all(|on| {
                self.changed
                    .get(on)
                    .is_none_or(|changed| *changed < verdict.checked)
            });
        fresh.then(|| verdict.clone())
    }
}

/// Turns bearer secrets into principals.
#[derive(Clone, Debug)]
pub struct Authenticator {
    store: Store,
    clock: Arc<dyn Clock>,
    cache: Arc<Mutex<Cache>>,
    metrics: Arc<Metrics>,
}

impl Authenticator {
    /// Verifies secrets against `store`, reading time (for expiry) from `clock`; counts its
    /// database lookups in `metrics`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            clock,
            cache: Arc::default(),
            metrics,
        }
    }

    /// The principal holding `secret`, or why there is none.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal> {
        let hash = hash_secret(secret);
        let cached = self.cache.lock().ok().and_then(|cache| cache.fresh(&hash));
        let verdict = match cached {
            Some(verdict) => verdict,
            None => {
                self.metrics.token_looked_up();
                // Taken before the lookup: a change that lands while it runs makes it stale.
                let checked = Instant::now();
                let verdict = Verdict {
                    checked,
                    found: self.look_up(&hash).await?,
                };
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.verdicts.len() >= CACHE_CAPACITY {
                        cache.verdicts.clear();
                    }
                    cache.verdicts.insert(hash, verdict.clone());
                }
                verdict
            }
        };
        let Some((token, principal)) = verdict.found else {
            return Err(unauthenticated("UNKNOWN_TOKEN", "the token is not known"));
        };
        if token.revoke_time.is_some() {
            return Err(unauthenticated("TOKEN_REVOKED", "the token was revoked"));
        }
        if token
            .expire_time
            .is_some_and(|expiry| self.clock.now() >= expiry)
        {
            return Err(unauthenticated("TOKEN_EXPIRED", "the token has expired"));
        }
        principal.ok_or_else(|| {
            unauthenticated(
                "PRINCIPAL_INVALID",
                "the token's agent or customer is invalid or gone",
            )
        })
    }

    /// Makes the cached verdicts that depend on `changed` stale, so that a change made on
    /// this replica (a revocation, an owner made invalid, a customer moved) applies to the
    /// very next call here; the rest of the cache stays. Other replicas follow within
    /// [`CACHE_TTL`].
    pub fn forget(&self, changed: impl IntoIterator<Item = Stale>) {
        if let Ok(mut cache) = self.cache.lock() {
            let now = Instant::now();
            if cache.changed.len() >= CACHE_CAPACITY {
                cache
                    .changed
                    .retain(|_, at| now.duration_since(*at) < CACHE_TTL);
            }
            for stale in changed {
                cache.changed.insert(stale, now);
            }
        }
    }

    async fn look_up(&self, hash: &str) -> Result<Option<(Token, Option<Principal>)>> {
        let Some((token, holder)) = self.store.token_by_secret(hash).await? else {
            return Ok(None);
        };
        let principal = match holder {
            TokenHolder::Admin => Some(Principal::Admin { token_id: token.id }),
            TokenHolder::Agent(agent) if agent.validity == Validity::Valid => {
                Some(Principal::Agent {
                    token_id: token.id,
                    agent_id: agent.id,
                    manage_customers: agent.manage_customers,
                })
            }
            TokenHolder::Customer(customer) if customer.validity == Validity::Valid => {
                Some(Principal::Customer {
                    token_id: token.id,
                    customer_id: customer.id,
                    organisation_ids: customer.organisation_ids().collect(),
                })
            }
            _ => None,
        };
        Ok(Some((token, principal)))
    }
}

fn unauthenticated(reason: &'static str, message: &str) -> Error {
    Error::Unauthenticated {
        reason,
        message: message.to_owned(),
    }
}

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
    fn secrets_are_long_random_and_differ() {
        let one = new_secret().unwrap();
        let two = new_secret().unwrap();
        assert!(one.starts_with("clt_") && one.len() >= 40);
        assert_ne!(one, two);
        assert_ne!(hash_secret(&one), hash_secret(&two));
        assert_eq!(hash_secret(&one).len(), 64);
    }

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
