use std::collections::BTreeMap;

use jiff::Timestamp;
use uuid::Uuid;

use super::{Validity, organisation::etag_of};

/// A person who raises tickets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Primary email address; the domain part lower-case.
    pub email: String,
    /// Further addresses of the same person, sorted.
    pub secondary_emails: Vec<String>,
    /// Login name.
    pub login: Option<String>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Salutation or title.
    pub title: String,
    /// Phone number.
    pub phone: String,
    /// Mobile number.
    pub mobile: String,
    /// The primary organisation.
    pub organisation_id: Option<Uuid>,
    /// Further organisations, sorted, without the primary.
    pub secondary_organisation_ids: Vec<Uuid>,
    /// Free label ("VIP", "partner").
    pub customer_type: String,
    /// Site-specific attributes.
    pub custom_fields: BTreeMap<String, String>,
    /// Key in another system.
    pub external_id: Option<String>,
    /// Whether the customer is in use.
    pub validity: Validity,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
    /// The directory the customer is filed in: it decides which agents read it.
    pub directory_id: Option<Uuid>,
    /// The customer source (an LDAP directory) the customer is read from; `None` for one
    /// kept in the helpdesk's own database.
    pub source: Option<SourceLink>,
}

/// Where a customer read from a customer source comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SourceLink {
    /// The source's configured name.
    pub name: String,
    /// The entry's key in the source (its `entryUUID`, say).
    pub key: String,
}

impl Customer {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }

    /// Whether this is the tombstone of an erased person.
    pub fn is_erased(&self) -> bool {
        self.email_domain() == super::ERASED_DOMAIN
    }

    /// The domain of the primary email address.
    pub fn email_domain(&self) -> &str {
        email_domain(&self.email)
    }

    /// Every organisation the customer belongs to, the primary first.
    pub fn organisation_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.organisation_id
            .into_iter()
            .chain(self.secondary_organisation_ids.iter().copied())
    }
}

/// The domain part of an email address.
pub fn email_domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, domain)| domain)
}
