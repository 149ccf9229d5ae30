//! API tokens: made for admins, agents and customers, shown once, revocable.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::json;
use uuid::Uuid;

use super::{
    changes,
    fields::{self, Violations},
    paging::{self, Page},
    rights::Administrator,
};
use crate::domain::access::ServiceWork;
use crate::{
    clock::Clock,
    domain::access::{self, Principal},
    error::{Error, PreconditionViolation, Result},
    model::{Agent, ChangeKind, FieldChange, ResourceType, Token, TokenOwner, Validity},
    store::Store,
};

/// Who the calling token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The calling token.
    pub token: Token,
    /// The agent, for an agent's token.
    pub agent: Option<Agent>,
    /// The customer and its organisations, for a customer's token.
    pub customer: Option<(Uuid, Vec<Uuid>)>,
}

/// The token rules, over the store.
#[derive(Clone, Debug)]
pub struct Tokens {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Tokens {
    /// The rules over `store`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Makes a token for `owner`; returns it and its secret (shown this once).
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn create(
        &self,
        admin: &Administrator,
        owner: TokenOwner,
        description: &str,
        expire_time: Option<Timestamp>,
    ) -> Result<(Token, String)> {
        let now = self.clock.now();
        let mut violations = Violations::default();
        let description =
            fields::single_line(&mut violations, "description", description, 200, false);
        if expire_time.is_some_and(|expiry| expiry <= now) {
            violations.add("expire_time", "must be in the future");
        }
        violations.finish()?;
        self.check_owner(owner).await?;
        let secret = access::new_secret()?;
        let token = self
            .insert(admin, owner, description, expire_time, &secret, now)
            .await?;
        Ok((token, secret))
    }

    /// Registers `secret` as an admin token unless an admin token already works: the first
    /// admin token of a new installation (`CLIENTELE_BOOTSTRAP_TOKEN`). Returns whether it
    /// did.
    pub async fn bootstrap(&self, secret: &str) -> Result<bool> {
        if secret.len() < access::MIN_SECRET_LENGTH {
            return Err(Error::invalid(
                "CLIENTELE_BOOTSTRAP_TOKEN",
                format!(
                    "must be at least {} characters long",
                    access::MIN_SECRET_LENGTH
                ),
            ));
        }
        let now = self.clock.now();
        if self.store.has_active_admin_token(now).await? {
            return Ok(false);
        }
        let token = self
            .insert(
                &ServiceWork::START_UP.administrator(),
                TokenOwner::Admin,
                "bootstrap".into(),
                None,
                secret,
                now,
            )
            .await;
        match token {
            Ok(_) => Ok(true),
            // The same bootstrap token registered before and revoked since stays revoked.
            Err(Error::AlreadyExists { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// One page of tokens.
    pub async fn list(
        &self,
        owner: Option<TokenOwner>,
        include_inactive: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Token>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint =
            paging::fingerprint(&(owner.map(|o| (o.kind(), o.subject_id())), include_inactive));
        let after: Option<Uuid> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_tokens(owner, include_inactive, self.clock.now(), after, limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, |token| token.id))
    }

    /// Revokes token `id`. Admins may revoke any token, others only their own (another's is
    /// NOT_FOUND, as if it did not exist). Revoking a revoked token changes nothing.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn revoke(&self, principal: &Principal, id: Uuid) -> Result<Token> {
        let token = self
            .store
            .token(id)
            .await?
            .filter(|token| owns(principal, token))
            .ok_or(Error::NotFound { resource: "token" })?;
        if token.revoke_time.is_some() {
            return Ok(token);
        }
        let now = self.clock.now();
        let event = changes::event(
            &principal.actor(),
            now,
            ResourceType::Token,
            id,
            ChangeKind::Updated,
            vec![FieldChange {
                field: "revoke_time".into(),
                old: serde_json::Value::Null,
                new: json!(now),
            }],
        );
        let token = self.store.revoke_token(id, now, &event).await?;
        Ok(token)
    }

    /// Who `principal` is.
    pub async fn who_am_i(&self, principal: &Principal) -> Result<Identity> {
        let token = self
            .store
            .token(principal.token_id())
            .await?
            .ok_or(Error::NotFound { resource: "token" })?;
        Ok(match principal {
            Principal::Admin { .. } => Identity {
                token,
                agent: None,
                customer: None,
            },
            Principal::Agent { agent_id, .. } => Identity {
                token,
                agent: self.store.agent(*agent_id).await?,
                customer: None,
            },
            Principal::Customer {
                customer_id,
                organisation_ids,
                ..
            } => Identity {
                token,
                agent: None,
                customer: Some((*customer_id, organisation_ids.clone())),
            },
        })
    }

    async fn insert(
        &self,
        admin: &Administrator,
        owner: TokenOwner,
        description: String,
        expire_time: Option<Timestamp>,
        secret: &str,
        now: Timestamp,
    ) -> Result<Token> {
        let token = Token {
            id: Uuid::now_v7(),
            owner,
            description,
            create_time: now,
            expire_time,
            revoke_time: None,
        };
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Token,
            token.id,
            ChangeKind::Created,
            vec![
                FieldChange {
                    field: "owner".into(),
                    old: serde_json::Value::Null,
                    new: json!({"kind": owner.kind(), "id": owner.subject_id()}),
                },
                FieldChange {
                    field: "expire_time".into(),
                    old: serde_json::Value::Null,
                    new: json!(expire_time),
                },
            ],
        );
        self.store
            .insert_token(&token, &access::hash_secret(secret), &event)
            .await
    }

    /// An agent or customer owner must exist and be valid.
    async fn check_owner(&self, owner: TokenOwner) -> Result<()> {
        let validity = match owner {
            TokenOwner::Admin => return Ok(()),
            TokenOwner::Agent(id) => self.store.agent(id).await?.map(|a| a.validity),
            TokenOwner::Customer(id) => self
                .store
                .customer(&ServiceWork::RULE_CHECKS.master_data(), id)
                .await?
                .map(|c| c.validity),
        };
        match validity {
            None => Err(Error::invalid(
                "owner",
                format!("no {} has this id", owner.kind()),
            )),
            Some(Validity::Valid) => Ok(()),
            Some(_) => Err(Error::FailedPrecondition {
                reason: "OWNER_INVALID",
                message: format!("an invalid {} gets no tokens", owner.kind()),
                violations: vec![PreconditionViolation {
                    kind: "OWNER_INVALID".into(),
                    subject: owner
                        .subject_id()
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    description: "reactivate it first".into(),
                }],
            }),
        }
    }
}

/// Whether `token` is `principal`'s to revoke.
fn owns(principal: &Principal, token: &Token) -> bool {
    match (principal, token.owner) {
        (Principal::Admin { .. }, _) => true,
        (Principal::Agent { agent_id, .. }, TokenOwner::Agent(id)) => *agent_id == id,
        (Principal::Customer { customer_id, .. }, TokenOwner::Customer(id)) => *customer_id == id,
        _ => false,
    }
}
