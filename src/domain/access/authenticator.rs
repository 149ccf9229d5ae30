//! Bearer secrets turned into principals, with a short-lived cache so that a call does not
//! cost a database round trip. The cache follows the change log: a revocation, an owner made
//! invalid, a customer moved or an agent's flags changed moves the rights generation (on this
//! replica before the write returns, on the others as its notification arrives), and every
//! verdict read before it is read again. The auth layer takes the secret from the request
//! and asks here; who the caller is, is the access module's answer.

use std::{sync::Arc, time::Duration};

use super::{Principal, hash_secret};
use crate::{
    clock::Clock,
    domain::Permissions,
    error::{Error, Result},
    metrics::Metrics,
    model::{Subject, Token, Validity},
    store::{Scope, Store, TokenHolder},
};

/// How long a verified token is trusted at most before the database is asked again: the bound
/// on how late a change another replica made reaches this one should its notification be lost.
pub const CACHE_TTL: Duration = Duration::from_millis(500);
/// How many verdicts are kept, bounding the cache's memory.
const CACHE_CAPACITY: u64 = 100_000;

/// What the database said about a secret.
type Verdict = Option<(Token, Option<Principal>)>;

/// Turns bearer secrets into principals.
#[derive(Clone, Debug)]
pub struct Authenticator {
    store: Store,
    clock: Arc<dyn Clock>,
    /// Verdicts by secret hash, with the rights generation they were read at.
    cache: moka::sync::Cache<String, (u64, Verdict)>,
    /// Verdicts by token id, kept alike: what a running stream asks again.
    by_token: moka::sync::Cache<uuid::Uuid, (u64, Verdict)>,
    metrics: Arc<Metrics>,
    /// The rights an agent's contacts are read from.
    permissions: Permissions,
}

impl Authenticator {
    /// Verifies secrets against `store`, reading time (for expiry) from `clock`; counts its
    /// database lookups in `metrics`; an agent's contacts come from its rights in
    /// `permissions`.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        permissions: Permissions,
    ) -> Self {
        Self {
            store,
            clock,
            cache: verdicts(),
            by_token: verdicts(),
            metrics,
            permissions,
        }
    }

    /// The principal holding `secret`, or why there is none.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal> {
        let hash = hash_secret(secret);
        self.metrics.token_checked();
        // The generation is read first: a change committed while the token is looked up
        // leaves the verdict marked with the generation before, so that it is read again.
        let generation = self.store.rights_generation();
        let verdict = match self.cache.get(&hash) {
            Some((read_at, verdict)) if read_at == generation => verdict,
            _ => {
                self.metrics.token_looked_up();
                let verdict = verdict_of(self.store.token_by_secret(&hash).await?);
                self.cache.insert(hash, (generation, verdict.clone()));
                verdict
            }
        };
        self.with_contacts(self.admit(verdict)?).await
    }

    /// Whether the token `principal` authenticated with still works, asked again by a stream
    /// that runs for a while: UNAUTHENTICATED, for the same reasons as [`Self::authenticate`],
    /// once it was revoked or expired or its holder became invalid or gone. Through a cache
    /// kept like the one of secrets.
    pub async fn still_holds(&self, principal: &Principal) -> Result<Principal> {
        let id = principal.token_id();
        let generation = self.store.rights_generation();
        let verdict = match self.by_token.get(&id) {
            Some((read_at, verdict)) if read_at == generation => verdict,
            _ => {
                self.metrics.token_looked_up();
                let verdict = verdict_of(self.store.token_with_holder(id).await?);
                self.by_token.insert(id, (generation, verdict.clone()));
                verdict
            }
        };
        self.with_contacts(self.admit(verdict)?).await
    }

    /// `principal` with the contacts it reads as its rights are now (an agent's depend on
    /// its directories; they are kept with its rights, so this is a lookup).
    async fn with_contacts(&self, mut principal: Principal) -> Result<Principal> {
        if let Principal::Agent {
            agent_id, contacts, ..
        } = &mut principal
        {
            *contacts = self
                .permissions
                .rights(Subject::Agent(*agent_id))
                .await?
                .contacts();
        }
        Ok(principal)
    }

    /// The principal of a token as the database had it, or why it may not call.
    fn admit(&self, verdict: Verdict) -> Result<Principal> {
        let Some((token, principal)) = verdict else {
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
}

/// The verdict on a token and its holder as read from the store.
fn verdict_of(found: Option<(Token, TokenHolder)>) -> Verdict {
    let (token, holder) = found?;
    let principal = match holder {
        TokenHolder::Admin => Some(Principal::Admin { token_id: token.id }),
        TokenHolder::Agent(agent) if agent.validity == Validity::Valid => Some(Principal::Agent {
            token_id: token.id,
            agent_id: agent.id,
            manage_customers: agent.manage_customers,
            details: agent.details_access,
            // Set from its rights before the principal is handed over.
            contacts: Scope::everything(),
        }),
        TokenHolder::Customer(customer) if customer.validity == Validity::Valid => {
            Some(Principal::Customer {
                token_id: token.id,
                customer_id: customer.id,
                organisation_ids: customer.organisation_ids().collect(),
            })
        }
        _ => None,
    };
    Some((token, principal))
}

/// A cache of verdicts: bounded, each read again after [`CACHE_TTL`] at the latest.
fn verdicts<K>() -> moka::sync::Cache<K, (u64, Verdict)>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    moka::sync::Cache::builder()
        .max_capacity(CACHE_CAPACITY)
        .time_to_live(CACHE_TTL)
        .build()
}

pub(crate) fn unauthenticated(reason: &'static str, message: &str) -> Error {
    Error::Unauthenticated {
        reason,
        message: message.to_owned(),
    }
}
