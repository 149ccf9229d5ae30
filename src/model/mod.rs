//! The resources as plain data: what the store persists and the domain's rules act on.
//! Neither proto nor database types appear here, so every layer can share these.

mod agent;
mod catalogue;
mod change;
mod comment;
mod contact_group;
mod customer;
mod customer_source;
mod directory;
mod erasure;
mod grant;
mod group;
mod organisation;
mod query;
mod search;
mod settings;
mod sla;
mod ticket;
mod token;
mod webhook;

pub use agent::{Agent, DetailsAccess};
pub use catalogue::{CustomerType, FieldDefinition, FieldValueType, RecordType};
pub use change::{ChangeEvent, ChangeKind, FieldChange, ResourceType};
pub use comment::{Attachment, Comment, CommentParent, Party, Visibility};
pub use contact_group::{
    Contact, ContactGroup, ContactGroupKind, ContactGroupMember, ContactGroupMembership,
    EffectivePrice, Price, PriceItem, PriceList, PriceListAssignment, Responsibility, SlaContract,
};
pub use customer::{Customer, SourceLink, email_domain};
pub use customer_source::{SourceRefusal, SourceSync, SyncKind};
pub use directory::Directory;
pub use erasure::{ERASED_DOMAIN, Erasure, ErasureReport, erased_values};
pub use grant::{Grant, GrantContext, Level, Subject, SubjectKind};
pub use group::Group;
pub use organisation::Organisation;
pub use query::{
    ChangeFilter, Cursor, CustomerFilter, CustomerOrder, GrantFilter, OrganisationFilter,
    OrganisationOrder, StoredChange, TicketCursor, TicketFilter, TicketOrder, TicketOrderKey,
    ValidityFilter, fold_case, name_key,
};
pub use search::{
    Fragment, RANKED, customer_document, customer_fields_document, fold_for_search,
    organisation_document, organisation_fields_document, phone_digits, ranked_key,
};
pub use settings::Settings;
pub use sla::{Calendar, Deadline, Minute, SlaPolicy};
pub use ticket::{Alert, Alerts, Severity, SlaClocks, Ticket, TicketState};
pub use token::{Token, TokenOwner};
pub use webhook::{Activity, ActivityTarget, Delivery, DeliveryStatus, Webhook};

use std::fmt;

/// Whether a master-data record is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// In use.
    Valid,
    /// Out of use for good.
    Invalid,
    /// Out of use for a while.
    InvalidTemporarily,
}

impl Validity {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::InvalidTemporarily => "invalid_temporarily",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "valid" => Some(Self::Valid),
            "invalid" => Some(Self::Invalid),
            "invalid_temporarily" => Some(Self::InvalidTemporarily),
            _ => None,
        }
    }

    /// True for [`Validity::Valid`].
    pub fn is_valid(self) -> bool {
        self == Self::Valid
    }
}

/// Who made a change, as the change log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// An actor named by its kind and id, e.g. `agent:0190…`.
    pub fn named(kind: &str, id: impl fmt::Display) -> Self {
        Self(format!("{kind}:{id}"))
    }

    /// The service itself (start-up tasks, scheduled work).
    pub fn system() -> Self {
        Self("system".to_owned())
    }

    /// The label written into the change log.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
