//! Streams follow rights: a stream that runs for a while (ListTickets, DownloadAttachment,
//! WatchEscalations) asks for its caller's rights again at most every [`RIGHTS_TTL`], through
//! the caches every call takes (the authenticator's verdicts, the compiled rights), and ends
//! when they are gone: UNAUTHENTICATED once the token was revoked or expired or its holder
//! became invalid, PERMISSION_DENIED once the rights that opened the stream no longer reach
//! what it was streaming.

use std::{time::Duration, time::Instant};

use super::Tickets;
use crate::{
    domain::access::Principal,
    error::{Error, Result},
    model::Level,
    store::TicketScope,
};

/// How often a stream asks for its caller's rights again.
pub const RIGHTS_TTL: Duration = Duration::from_millis(500);

impl Tickets {
    /// What `principal` may read now; UNAUTHENTICATED once its token no longer works
    /// (revoked, expired, gone, or its agent or customer invalid or gone).
    pub(crate) async fn stream_scope(&self, principal: &Principal) -> Result<TicketScope> {
        self.authenticator.still_holds(principal).await?;
        self.scope(principal, Level::Ro).await
    }

    /// The caller as it is now (its agent's flags as stored now); UNAUTHENTICATED once its
    /// token no longer works. Streams that show notes judge them by this one.
    pub(crate) async fn stream_principal(&self, principal: &Principal) -> Result<Principal> {
        self.authenticator.still_holds(principal).await
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
        let current = self.tickets.stream_scope(&self.principal).await?;
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
