//! What a caller may read. Client-facing reads take a [`Scope`] derived from the principal,
//! so that a query cannot return what the caller may not see: it is filtered in SQL, never
//! after loading.

use std::sync::Arc;

use sea_orm::{ColumnTrait, Condition};
use uuid::Uuid;

/// The part of the data a read may return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope(Reach);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Reach {
    /// Admins, agents, and the service itself read all master data.
    Everything,
    /// A customer reads its own record and its organisations.
    Customer {
        customer_id: Uuid,
        organisation_ids: Vec<Uuid>,
    },
    /// An agent where directories are in use: the contacts filed in no directory and those
    /// filed in one of these (sorted).
    Directories(Arc<Vec<Uuid>>),
}

impl Scope {
    /// All of it: admins, agents, and the service's own work.
    pub fn everything() -> Self {
        Self(Reach::Everything)
    }

    /// What customer `customer_id`, member of `organisation_ids`, may read.
    pub fn customer(customer_id: Uuid, organisation_ids: Vec<Uuid>) -> Self {
        Self(Reach::Customer {
            customer_id,
            organisation_ids,
        })
    }

    /// What an agent reads: with `readable` `None` (no directory exists), every contact;
    /// otherwise the contacts filed in no directory and those filed in one of `readable`.
    pub fn agent(readable: Option<Vec<Uuid>>) -> Self {
        match readable {
            None => Self::everything(),
            Some(mut ids) => {
                ids.sort();
                ids.dedup();
                Self(Reach::Directories(Arc::new(ids)))
            }
        }
    }

    /// Whether a contact filed in `directory_id` (or in none) is within the scope, as far as
    /// directories decide (the customer reach is decided by id).
    pub fn admits_filed(&self, directory_id: Option<Uuid>) -> bool {
        match (&self.0, directory_id) {
            (Reach::Directories(readable), Some(id)) => readable.binary_search(&id).is_ok(),
            _ => true,
        }
    }

    /// Whether directories hide some contacts from the scope's holder.
    pub fn hides_filed(&self) -> bool {
        matches!(self.0, Reach::Directories(_))
    }

    /// Whether `customer` is within the scope.
    pub fn admits_customer_record(&self, customer: &crate::model::Customer) -> bool {
        self.admits_customer(customer.id) && self.admits_filed(customer.directory_id)
    }

    /// Whether `organisation` is within the scope.
    pub fn admits_organisation_record(&self, organisation: &crate::model::Organisation) -> bool {
        self.admits_organisation(organisation.id) && self.admits_filed(organisation.directory_id)
    }

    /// The condition on a contact's directory column.
    pub(crate) fn filed(&self, directory: impl ColumnTrait) -> Condition {
        match &self.0 {
            Reach::Directories(readable) => Condition::any()
                .add(directory.is_null())
                .add(directory.is_in(readable.iter().copied())),
            Reach::Everything | Reach::Customer { .. } => Condition::all(),
        }
    }

    /// Whether organisation `id` is within the scope, as far as its id decides.
    pub(crate) fn admits_organisation(&self, id: Uuid) -> bool {
        match &self.0 {
            Reach::Everything | Reach::Directories(_) => true,
            Reach::Customer {
                organisation_ids, ..
            } => organisation_ids.contains(&id),
        }
    }

    /// Whether customer `id` is within the scope, as far as its id decides.
    pub(crate) fn admits_customer(&self, id: Uuid) -> bool {
        match &self.0 {
            Reach::Everything | Reach::Directories(_) => true,
            Reach::Customer { customer_id, .. } => *customer_id == id,
        }
    }

    /// The condition on an organisation id column.
    pub(crate) fn organisations(&self, id: impl ColumnTrait) -> Condition {
        match &self.0 {
            Reach::Everything | Reach::Directories(_) => Condition::all(),
            Reach::Customer {
                organisation_ids, ..
            } => Condition::all().add(id.is_in(organisation_ids.clone())),
        }
    }

    /// The condition on a customer id column.
    pub(crate) fn customers(&self, id: impl ColumnTrait) -> Condition {
        match &self.0 {
            Reach::Everything | Reach::Directories(_) => Condition::all(),
            Reach::Customer { customer_id, .. } => Condition::all().add(id.eq(*customer_id)),
        }
    }
}

/// The tickets a caller may read (or write: a scope is built for one level). Every ticket
/// query of the store takes one, so that a ticket outside it is never loaded; it is derived
/// from the caller's grants by the domain (`Permissions::ticket_scope`). Shared: a clone
/// costs a reference count, not the caller's paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketScope(Arc<TicketReach>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum TicketReach {
    /// Admins, and the service's own work (the escalation scheduler).
    Everything,
    /// The paths of DESIGN §2: every ticket of some groups; the tickets of some
    /// organisations in some groups; a customer's own tickets in some groups.
    Paths(TicketPaths),
}

/// The ways to a ticket that a caller's grants open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketPaths {
    /// Groups every ticket of which is in reach (agents' grants, OTHER_ORGANISATIONS).
    pub all_groups: Vec<Uuid>,
    /// Per organisation of the caller, the groups whose tickets of that organisation are in
    /// reach (SAME_ORGANISATION grants of that organisation, and company_always_groups).
    pub organisation_groups: Vec<(Uuid, Vec<Uuid>)>,
    /// Groups whose tickets of [`TicketPaths::customer`] (as main or additional customer)
    /// are in reach.
    pub own_groups: Vec<Uuid>,
    /// The calling customer.
    pub customer: Option<Uuid>,
    /// The groups the caller reads every ticket of (at RO): a ticket with a reader group
    /// (`Ticket::reader_group_id`) is reached through [`TicketPaths::all_groups`] only if its
    /// reader group is one of these. The other paths (a customer's own and its organisation's
    /// tickets) do not depend on it.
    pub reader_groups: Vec<Uuid>,
}

impl TicketScope {
    /// Every ticket: admins, and work the service does by itself.
    pub fn everything() -> Self {
        Self(Arc::new(TicketReach::Everything))
    }

    /// The tickets `paths` lead to.
    pub fn paths(mut paths: TicketPaths) -> Self {
        for (_, groups) in &mut paths.organisation_groups {
            groups.sort();
            groups.dedup();
        }
        paths
            .organisation_groups
            .retain(|(_, groups)| !groups.is_empty());
        paths.organisation_groups.sort();
        for ids in [
            &mut paths.all_groups,
            &mut paths.own_groups,
            &mut paths.reader_groups,
        ] {
            ids.sort();
            ids.dedup();
        }
        Self(Arc::new(TicketReach::Paths(paths)))
    }

    /// Whether the scope reaches every ticket.
    pub fn is_everything(&self) -> bool {
        *self.0 == TicketReach::Everything
    }

    /// The condition on the `tickets` table (and its additional customers) that keeps the
    /// rows in reach.
    pub(crate) fn condition(&self) -> Condition {
        use super::entities::{ticket, ticket_customer};
        use sea_orm::sea_query::{Expr, ExprTrait, Query};

        let TicketReach::Paths(paths) = &*self.0 else {
            return Condition::all();
        };
        let mut any = Condition::any();
        if !paths.all_groups.is_empty() {
            let mut readers = Condition::any().add(ticket::Column::ReaderGroupId.is_null());
            if !paths.reader_groups.is_empty() {
                readers =
                    readers.add(ticket::Column::ReaderGroupId.is_in(paths.reader_groups.clone()));
            }
            any = any.add(
                Condition::all()
                    .add(ticket::Column::GroupId.is_in(paths.all_groups.clone()))
                    .add(readers),
            );
        }
        for (organisation, groups) in &paths.organisation_groups {
            any = any.add(
                Condition::all()
                    .add(ticket::Column::OrganisationId.eq(*organisation))
                    .add(ticket::Column::GroupId.is_in(groups.clone())),
            );
        }
        if let Some(customer) = paths.customer
            && !paths.own_groups.is_empty()
        {
            let additional = Query::select()
                .column(ticket_customer::Column::TicketId)
                .from(ticket_customer::Entity)
                .and_where(Expr::col(ticket_customer::Column::CustomerId).eq(customer))
                .to_owned();
            any = any.add(
                Condition::all()
                    .add(ticket::Column::GroupId.is_in(paths.own_groups.clone()))
                    .add(
                        Condition::any()
                            .add(ticket::Column::CustomerId.eq(customer))
                            .add(ticket::Column::Id.in_subquery(additional)),
                    ),
            );
        }
        if any.is_empty() {
            // No path at all: nothing is in reach.
            return Condition::all().add(Expr::cust("1 = 0"));
        }
        any
    }

    /// Whether every ticket this scope reaches is also reached by `other`: a stream opened
    /// with this scope may go on under `other`.
    pub fn within(&self, other: &TicketScope) -> bool {
        let (TicketReach::Paths(mine), TicketReach::Paths(theirs)) = (&*self.0, &*other.0) else {
            return other.is_everything();
        };
        let all = |group: &Uuid| theirs.all_groups.binary_search(group).is_ok();
        let organisation = |organisation: &Uuid, group: &Uuid| {
            theirs
                .organisation_groups
                .binary_search_by_key(organisation, |(id, _)| *id)
                .ok()
                .and_then(|at| theirs.organisation_groups.get(at))
                .is_some_and(|(_, groups)| groups.binary_search(group).is_ok())
        };
        let own = |group: &Uuid| {
            mine.customer == theirs.customer && theirs.own_groups.binary_search(group).is_ok()
        };
        // A reader group of mine that the other does not read could hide a ticket from it.
        let readers = mine.all_groups.is_empty()
            || mine
                .reader_groups
                .iter()
                .all(|group| theirs.reader_groups.binary_search(group).is_ok());
        mine.all_groups.iter().all(all)
            && readers
            && mine.organisation_groups.iter().all(|(id, groups)| {
                groups
                    .iter()
                    .all(|group| all(group) || organisation(id, group))
            })
            && mine.own_groups.iter().all(|group| all(group) || own(group))
    }

    /// Whether `ticket` is in reach: the same test as [`TicketScope::condition`], on a
    /// ticket already loaded (for events pushed to watchers).
    pub fn admits_ticket(&self, ticket: &crate::model::Ticket) -> bool {
        self.admits(
            ticket.group_id,
            ticket.organisation_id,
            ticket.reader_group_id,
            ticket.customer_ids(),
        )
    }

    /// Whether a ticket of `group_id` and `organisation_id`, limited to the readers of
    /// `reader_group` if any, whose customers are `customers` is in reach: the same test as
    /// [`TicketScope::condition`].
    pub fn admits(
        &self,
        group_id: Uuid,
        organisation_id: Option<Uuid>,
        reader_group: Option<Uuid>,
        mut customers: impl Iterator<Item = Uuid>,
    ) -> bool {
        let TicketReach::Paths(paths) = &*self.0 else {
            return true;
        };
        (paths.all_groups.binary_search(&group_id).is_ok()
            && reader_group.is_none_or(|reader| paths.reader_groups.binary_search(&reader).is_ok()))
            || organisation_id.is_some_and(|org| {
                paths
                    .organisation_groups
                    .binary_search_by_key(&org, |(organisation, _)| *organisation)
                    .ok()
                    .and_then(|at| paths.organisation_groups.get(at))
                    .is_some_and(|(_, groups)| groups.binary_search(&group_id).is_ok())
            })
            || (paths.own_groups.binary_search(&group_id).is_ok()
                && paths.customer.is_some_and(|me| customers.any(|c| c == me)))
    }
}

#[cfg(test)]
impl TicketScope {
    /// The ids of the tickets in reach, by [`TicketScope::condition`]: for tests that run the
    /// condition on a table of their own.
    pub(crate) fn ids_query(&self) -> sea_orm::Select<super::entities::ticket::Entity> {
        use super::entities::ticket;
        use sea_orm::{EntityTrait, QueryFilter, QuerySelect};
        ticket::Entity::find()
            .select_only()
            .column(ticket::Column::Id)
            .filter(self.condition())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<const N: usize>() -> [Uuid; N] {
        std::array::from_fn(|_| Uuid::now_v7())
    }

    #[test]
    fn a_scope_is_within_another_exactly_when_the_other_reaches_all_it_reaches() {
        let [g1, g2, org, other_org, me, you] = ids();
        let all = |groups: Vec<Uuid>| {
            TicketScope::paths(TicketPaths {
                all_groups: groups,
                ..Default::default()
            })
        };
        let of_organisation = |organisation: Uuid, groups: Vec<Uuid>| {
            TicketScope::paths(TicketPaths {
                organisation_groups: vec![(organisation, groups)],
                ..Default::default()
            })
        };
        let own = |customer: Uuid, groups: Vec<Uuid>| {
            TicketScope::paths(TicketPaths {
                own_groups: groups,
                customer: Some(customer),
                ..Default::default()
            })
        };
        let nothing = TicketScope::paths(TicketPaths::default());
        let everything = TicketScope::everything();
        let cases = [
            (&everything, &everything, true),
            (&all(vec![g1]), &everything, true),
            (&everything, &all(vec![g1, g2]), false),
            (&nothing, &nothing, true),
            (&all(vec![g1]), &all(vec![g1, g2]), true),
            (&all(vec![g1, g2]), &all(vec![g1]), false),
            (&all(vec![g1]), &nothing, false),
            (
                &of_organisation(org, vec![g1]),
                &of_organisation(org, vec![g1, g2]),
                true,
            ),
            (&of_organisation(org, vec![g1]), &all(vec![g1]), true),
            (
                &of_organisation(org, vec![g1]),
                &of_organisation(other_org, vec![g1]),
                false,
            ),
            (
                &of_organisation(org, vec![g1, g2]),
                &of_organisation(org, vec![g1]),
                false,
            ),
            (&own(me, vec![g1]), &own(me, vec![g1, g2]), true),
            (&own(me, vec![g1]), &all(vec![g1]), true),
            (&own(me, vec![g1]), &own(you, vec![g1]), false),
            (&own(me, vec![g1, g2]), &own(me, vec![g2]), false),
            (&own(me, vec![g1]), &of_organisation(org, vec![g1]), false),
        ];
        for (index, (scope, other, within)) in cases.into_iter().enumerate() {
            assert_eq!(
                scope.within(other),
                within,
                "case {index}: {scope:?} in {other:?}"
            );
        }
    }
}
