//! Grants and the rights that follow from them (DESIGN §2 "Grants and permissions"):
//! [`Permissions`] gives and takes grants (`grants`), keeps each principal's compiled rights
//! (`held`) and answers questions about them (`check`). The rule itself is
//! `domain::access::Rights`.

mod check;
mod grants;
mod held;

pub use grants::GrantMode;

use std::{collections::HashSet, sync::Arc};

use uuid::Uuid;

use super::access::Rights;
use crate::{
    clock::Clock,
    model::Subject,
    store::{Kept, Store},
};

/// A principal whose rights are asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// An administrator.
    Admin,
    /// An agent.
    Agent(Uuid),
    /// A customer.
    Customer(Uuid),
}

/// A resource rights are asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// An organisation.
    Organisation(Uuid),
    /// A customer.
    Customer(Uuid),
    /// A group: all its tickets for agents, own tickets for customers.
    Group(Uuid),
    /// A ticket, through whichever path reaches it.
    Ticket(Uuid),
}

/// How many principals' rights are kept.
const CACHED_RIGHTS: u64 = 100_000;

/// How long kept rights are used at most: the bound on how late a change another replica
/// made reaches this one should its notification be lost.
const RIGHTS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The grant rules and the rights engine, over the store.
#[derive(Clone, Debug)]
pub struct Permissions {
    store: Store,
    clock: Arc<dyn Clock>,
    /// Compiled rights by subject, with the rights generation they were read at: rights read
    /// before the generation moved are stale (see [`Store::rights_generation`]).
    rights: moka::sync::Cache<Subject, (u64, Arc<Rights>)>,
    /// The valid groups, with the rights generation they were read at: shared by every
    /// holder's rights.
    valid_groups: Kept<Arc<HashSet<Uuid>>>,
    /// Every directory, kept alike.
    directories: Kept<Arc<Vec<crate::model::Directory>>>,
    /// Counts the rights asked for and read, for the cache's hit ratio.
    metrics: Arc<crate::metrics::Metrics>,
}

impl Permissions {
    /// The rules over `store`, reading time from `clock`, counting into `metrics`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self {
            store,
            clock,
            metrics,
            rights: moka::sync::Cache::builder()
                .max_capacity(CACHED_RIGHTS)
                .time_to_live(RIGHTS_TTL)
                .build(),
            valid_groups: Kept::new(RIGHTS_TTL),
            directories: Kept::new(RIGHTS_TTL),
        }
    }
}
