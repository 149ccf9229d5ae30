//! What a caller may read. Client-facing reads take a [`Scope`] derived from the principal,
//! so that a query cannot return what the caller may not see: it is filtered in SQL, never
//! after loading.

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

    /// The condition on an organisation id column.
    pub(crate) fn organisations(&self, id: impl ColumnTrait) -> Condition {
        match &self.0 {
            Reach::Everything => Condition::all(),
            Reach::Customer {
                organisation_ids, ..
            } => Condition::all().add(id.is_in(organisation_ids.clone())),
        }
    }

    /// The condition on a customer id column.
    pub(crate) fn customers(&self, id: impl ColumnTrait) -> Condition {
        match &self.0 {
            Reach::Everything => Condition::all(),
            Reach::Customer { customer_id, .. } => Condition::all().add(id.eq(*customer_id)),
        }
    }
}
