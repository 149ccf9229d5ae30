//! The authenticated caller.

use uuid::Uuid;

use crate::{
    model::{Actor, DetailsAccess},
    store::Scope,
};

/// The roles the method policy distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// An administrator: may do everything.
    Admin,
    /// An agent.
    Agent,
    /// A customer.
    Customer,
}

impl Role {
    /// The role's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Agent => "agent",
            Self::Customer => "customer",
        }
    }
}

/// Who is calling, as the auth layer established it from the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// An administrator.
    Admin {
        /// The token used.
        token_id: Uuid,
    },
    /// A valid agent.
    Agent {
        /// The token used.
        token_id: Uuid,
        /// The agent.
        agent_id: Uuid,
        /// The "customer administrator" flag.
        manage_customers: bool,
        /// What it may do with supplementary details.
        details: DetailsAccess,
        /// The contacts it reads, as its directories decide (compiled with its rights).
        contacts: Scope,
    },
    /// A valid customer.
    Customer {
        /// The token used.
        token_id: Uuid,
        /// The customer.
        customer_id: Uuid,
        /// Its organisations, primary first.
        organisation_ids: Vec<Uuid>,
    },
}

impl Principal {
    /// What it may do with supplementary details (notes on organisations and customers, with
    /// their attachments): admins write, agents as granted, customers nothing.
    pub fn details_access(&self) -> DetailsAccess {
        match self {
            Self::Admin { .. } => DetailsAccess::Write,
            Self::Agent { details, .. } => *details,
            Self::Customer { .. } => DetailsAccess::None,
        }
    }

    /// The principal's role.
    pub fn role(&self) -> Role {
        match self {
            Self::Admin { .. } => Role::Admin,
            Self::Agent { .. } => Role::Agent,
            Self::Customer { .. } => Role::Customer,
        }
    }

    /// The token the principal authenticated with.
    pub fn token_id(&self) -> Uuid {
        match self {
            Self::Admin { token_id }
            | Self::Agent { token_id, .. }
            | Self::Customer { token_id, .. } => *token_id,
        }
    }

    /// Who the change log names for this principal's changes.
    pub fn actor(&self) -> Actor {
        match self {
            Self::Admin { token_id } => Actor::named("admin", token_id),
            Self::Agent { agent_id, .. } => Actor::named("agent", agent_id),
            Self::Customer { customer_id, .. } => Actor::named("customer", customer_id),
        }
    }

    /// What the principal may read of the customer master: everything for admins, for an
    /// agent the contacts its directories let it read, its own record and organisations for
    /// a customer.
    pub fn scope(&self) -> Scope {
        match self {
            Self::Admin { .. } => Scope::everything(),
            Self::Agent { contacts, .. } => contacts.clone(),
            Self::Customer {
                customer_id,
                organisation_ids,
                ..
            } => Scope::customer(*customer_id, organisation_ids.clone()),
        }
    }
}
