//! The service's own work: what it reads and writes for itself, beyond any caller's rights.
//!
//! A caller's reads are bounded by the scopes its principal yields ([`Principal::scope`],
//! `Permissions::ticket_scope`); its writes by the capabilities of `domain::rights`. Some work
//! is the service's own and must see past them: the escalation scheduler reads every ticket
//! that comes due; the rules of a write check that the customer, organisation or group it names
//! exists and is valid whoever asks (a caller who may not read it still gets INVALID_ARGUMENT,
//! not a silent "not found"); `CheckPermission` must find the resource it is asked about;
//! start-up registers the bootstrap token. That reach is held as a [`ServiceWork`], which only
//! this module makes, each kind under a name that says whose work it is, so that every use
//! stands out in review. The raw constructors of scopes are called nowhere else: the
//! architecture test `only_the_access_module_makes_scopes` (tests/it/architecture.rs) fails
//! where they are.
//!
//! [`Principal::scope`]: super::Principal::scope

use crate::store::{Scope, TicketScope};

use super::super::rights::{Administrator, MasterDataWriter};

/// A piece of the service's own work, which reads past any caller's rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceWork(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    EscalationScheduler,
    RuleChecks,
    RightsQuestions,
    StartUp,
    CustomerSourceSync,
}

impl ServiceWork {
    /// The escalation scheduler and the feed of ticket events: every ticket that comes due,
    /// every ticket an event is about (each watcher's own scope filters what it hears).
    pub const ESCALATION_SCHEDULER: Self = Self(Kind::EscalationScheduler);

    /// The checks of a request's rules: that what it names exists and is valid, whoever asks;
    /// what it returns to the caller is read through the caller's own scope.
    pub const RULE_CHECKS: Self = Self(Kind::RuleChecks);

    /// The answers about rights (CheckPermission, effective rights, the rights of a stream):
    /// they look at the resource and the subject asked about, not through the caller.
    pub const RIGHTS_QUESTIONS: Self = Self(Kind::RightsQuestions);

    /// Start-up and the operator's command line: the bootstrap token, `clientele token`.
    pub const START_UP: Self = Self(Kind::StartUp);

    /// The sync of a customer source: it writes the customers an LDAP directory holds,
    /// whoever may read them.
    pub const CUSTOMER_SOURCE_SYNC: Self = Self(Kind::CustomerSourceSync);

    /// All the customer master.
    pub fn master_data(self) -> Scope {
        Scope::everything()
    }

    /// Every ticket.
    pub fn tickets(self) -> TicketScope {
        TicketScope::everything()
    }

    /// A writer of the whole customer master, recorded in the change log as `actor`.
    pub fn master_data_writer(self, actor: crate::model::Actor) -> MasterDataWriter {
        MasterDataWriter::of_service(actor, self.master_data())
    }

    /// The administrator of start-up work.
    pub fn administrator(self) -> Administrator {
        Administrator::operator()
    }
}
