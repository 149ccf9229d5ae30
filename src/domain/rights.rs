//! Rights as values: a domain operation that changes master data or administers the service
//! takes a capability that only a principal with that right can obtain, so that no handler
//! can forget the check.

use super::access::{Principal, Rights};
use crate::{error::Error, error::Result, model::Actor, store::Scope};

/// The right to create and edit organisations and customers: admins, and agents with the
/// `manage_customers` flag ("customer administrators"), on the contacts they read.
#[must_use]
#[derive(Clone, Debug)]
pub struct MasterDataWriter(Actor, Scope);

impl MasterDataWriter {
    /// Who writes, for the change log.
    pub fn actor(&self) -> &Actor {
        &self.0
    }

    /// The contacts the writer reads, and so may change: one outside is NOT_FOUND.
    pub fn contacts(&self) -> &Scope {
        &self.1
    }

    /// The writer of the service's own work (`ServiceWork`), which makes the scope.
    pub(in crate::domain) fn of_service(actor: Actor, contacts: Scope) -> Self {
        Self(actor, contacts)
    }
}

/// The right to administer the service: settings, grants, agents, groups, tokens.
#[must_use]
#[derive(Clone, Debug)]
pub struct Administrator(Actor);

impl Administrator {
    /// Who administers, for the change log.
    pub fn actor(&self) -> &Actor {
        &self.0
    }

    /// An administrator reads what staff read.
    pub fn reader(&self) -> StaffReader {
        StaffReader(Rights::admin_contacts())
    }

    /// The administrator of work the service does by itself on start-up (the bootstrap
    /// token, the `clientele token` command run on the database).
    pub fn operator() -> Self {
        Self(Actor::system())
    }
}

/// The right to read what only staff read: groups, agents, calendars, SLA policies, grants
/// and the answers about rights. Admins and agents; it knows the contacts the reader reads.
#[must_use]
#[derive(Clone, Debug)]
pub struct StaffReader(Scope);

impl StaffReader {
    /// The contacts the reader reads.
    pub fn contacts(&self) -> &Scope {
        &self.0
    }
}

/// `principal`'s right to read what only staff read, if it has it.
pub fn staff_reader(principal: &Principal) -> Result<StaffReader> {
    match principal {
        Principal::Admin { .. } | Principal::Agent { .. } => Ok(StaffReader(principal.scope())),
        Principal::Customer { .. } => Err(Error::denied(
            "STAFF_ONLY",
            "only agents and administrators may read this",
        )),
    }
}

/// `principal`'s right to write master data, if it has it.
pub fn master_data_writer(principal: &Principal) -> Result<MasterDataWriter> {
    match principal {
        Principal::Admin { .. }
        | Principal::Agent {
            manage_customers: true,
            ..
        } => Ok(MasterDataWriter(principal.actor(), principal.scope())),
        Principal::Agent { .. } => Err(Error::denied(
            "NO_MANAGE_CUSTOMERS",
            "creating and editing organisations and customers needs the manage_customers flag",
        )),
        Principal::Customer { .. } => Err(Error::denied(
            "CUSTOMERS_READ_ONLY",
            "customers may not change the customer master",
        )),
    }
}

/// `principal`'s right to administer, if it has it.
pub fn administrator(principal: &Principal) -> Result<Administrator> {
    match principal {
        Principal::Admin { .. } => Ok(Administrator(principal.actor())),
        _ => Err(Error::denied(
            "ADMINS_ONLY",
            "only administrators may do this",
        )),
    }
}
