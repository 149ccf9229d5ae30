//! Streams follow rights: a stream that runs for a while (ListTickets, DownloadAttachment,
//! WatchEscalations) reads its caller's rights again at most every [`RIGHTS_TTL`], shared by every stream of one
//! token, and ends when they are gone: UNAUTHENTICATED once the token was revoked or expired or
//! its holder became invalid, PERMISSION_DENIED once the rights that opened the stream no
//! longer reach what it was streaming.

use std::{collections::HashMap, sync::Arc, time::Duration, time::Instant};

use uuid::Uuid;

use super::Tickets;
use crate::domain::access::ServiceWork;
use crate::{
    domain::access::Principal,
    error::{Error, Result},
    model::Level,
    store::TicketScope,
};

/// How long rights read for a stream are taken as current.
pub const RIGHTS_TTL: Duration = Duration::from_millis(500);

/// The ticket rights of streaming principals by token, read again once they are
/// [`RIGHTS_TTL`] old and shared by every stream of one token (a thousand watchers of one
/// agent cost one read).
#[derive(Clone, Debug, Default)]
pub(crate) struct StreamRights {
    by_token: Arc<tokio::sync::Mutex<HashMap<Uuid, ReadRights>>>,
}

/// When rights were read, and what they were (`None`: the token no longer works).
type ReadRights = (Instant, Option<TicketScope>);

impl StreamRights {
    /// What `principal` may read now, or `None` when its token no longer works (revoked,
    /// expired, gone, or its agent or customer invalid or gone).
    pub(crate) async fn current(
        &self,
        tickets: &Tickets,
        principal: &Principal,
    ) -> Result<Option<TicketScope>> {
        let mut by_token = self.by_token.lock().await;
        if let Some((checked, scope)) = by_token.get(&principal.token_id())
            && checked.elapsed() < RIGHTS_TTL
        {
            return Ok(scope.clone());
        }
        let checked = Instant::now();
        let scope = if still_works(tickets, principal).await? {
            Some(tickets.scope(principal, Level::Ro).await?)
        } else {
            None
        };
        by_token.retain(|_, (at, _)| at.elapsed() < RIGHTS_TTL);
        by_token.insert(principal.token_id(), (checked, scope.clone()));
        Ok(scope)
    }
}

/// Whether `principal`'s token still works and its holder is still valid.
async fn still_works(tickets: &Tickets, principal: &Principal) -> Result<bool> {
    let store = &tickets.store;
    let Some(token) = store.token(principal.token_id()).await? else {
        return Ok(false);
    };
    if !token.is_active(tickets.clock.now()) {
        return Ok(false);
    }
    Ok(match principal {
        Principal::Admin { .. } => true,
        Principal::Agent { agent_id, .. } => store
            .agent(*agent_id)
            .await?
            .is_some_and(|agent| agent.validity.is_valid()),
        Principal::Customer { customer_id, .. } => store
            .customer(&ServiceWork::RIGHTS_QUESTIONS.master_data(), *customer_id)
            .await?
            .is_some_and(|customer| customer.validity.is_valid()),
    })
}

/// The end of a stream whose principal lost its right to call.
pub(crate) fn no_longer_authenticated() -> Error {
    Error::Unauthenticated {
        reason: "TOKEN_NO_LONGER_VALID",
        message: "the stream's token was revoked or expired, or its holder became invalid".into(),
    }
}

/// The rights a stream was opened with, checked again before it sends.
#[derive(Debug)]
pub struct RightsCheck {
    tickets: Tickets,
    principal: Principal,
    opening: TicketScope,
    checked: Instant,
}

impl RightsCheck {
    /// A check of `principal`, whose stream opened with `opening`.
    pub(crate) fn new(tickets: Tickets, principal: Principal, opening: TicketScope) -> Self {
        Self {
            tickets,
            principal,
            opening,
            checked: Instant::now(),
        }
    }

    /// Whether the stream may go on: an error to end it with when its token no longer works
    /// (UNAUTHENTICATED) or its rights no longer reach all that it was opened to read
    /// (PERMISSION_DENIED). Reads rights at most every [`RIGHTS_TTL`], through the cache.
    pub async fn recheck(&mut self) -> Result<()> {
        if self.checked.elapsed() < RIGHTS_TTL {
            return Ok(());
        }
        let current = self
            .tickets
            .stream_rights
            .current(&self.tickets, &self.principal)
            .await?
            .ok_or_else(no_longer_authenticated)?;
        if !self.opening.within(&current) {
            return Err(Error::denied(
                "RIGHTS_CHANGED",
                "the caller's rights changed while the list was streaming; list again",
            ));
        }
        self.checked = Instant::now();
        Ok(())
    }
}
