//! Webhooks: subscriptions to the change feed, POSTed to over HTTP(S).

use jiff::Timestamp;
use uuid::Uuid;

use super::{ChangeKind, ResourceType};

/// A subscription to the change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// Its id.
    pub id: Uuid,
    /// Where changes are POSTed: an absolute `http` or `https` URL.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// The key each delivery is signed with (HMAC-SHA256).
    pub secret: String,
    /// Only changes of these kinds of resources; all when empty.
    pub resource_types: Vec<ResourceType>,
    /// Only changes of these kinds; all when empty.
    pub kinds: Vec<ChangeKind>,
    /// Whether changes are delivered; an inactive one skips the changes made meanwhile.
    pub active: bool,
    /// How many attempts a delivery gets before it is dead-lettered.
    pub max_attempts: i32,
    /// When it was created.
    pub create_time: Timestamp,
    /// When it was last changed.
    pub update_time: Timestamp,
    /// Increases with every change (the etag).
    pub version: i64,
}

impl Webhook {
    /// Its etag.
    pub fn etag(&self) -> String {
        super::organisation::etag_of(self.version)
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DeliveryStatus {
    /// Not delivered yet: due at its next attempt time.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed: given up (dead-lettered) until retried.
    Dead,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// The status stored under `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead]
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// One change to deliver to one webhook, and how its delivery went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Its id, sent with every attempt (the receiver's key for discarding repeats).
    pub id: Uuid,
    /// The webhook.
    pub webhook_id: Uuid,
    /// The change's place in the feed.
    pub position: i64,
    /// The change's sequence number.
    pub seq: i64,
    /// The kind of resource changed.
    pub resource_type: String,
    /// The resource changed.
    pub resource_id: Uuid,
    /// What happened to it.
    pub kind: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending ones).
    pub next_attempt_time: Timestamp,
    /// The HTTP status of the last attempt, if the receiver answered.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: String,
    /// When it was delivered.
    pub delivered_time: Option<Timestamp>,
    /// When it was made.
    pub create_time: Timestamp,
}

/// What an activity is run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivityTarget {
    /// A customer.
    Customer,
    /// An organisation.
    Organisation,
}

impl ActivityTarget {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Organisation => "organisation",
        }
    }

    /// The target stored under `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Customer, Self::Organisation]
            .into_iter()
            .find(|target| target.as_str() == name)
    }
}

/// A customer activity (ConSol CM): a named action agents run on a customer or an
/// organisation, delivered to its webhook with the record and the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// Its id.
    pub id: Uuid,
    /// Its name, unique case-insensitively, e.g. "Send contract".
    pub name: String,
    /// What it does.
    pub description: String,
    /// The webhook a run is delivered to.
    pub webhook_id: Uuid,
    /// What it is run on.
    pub applies_to: ActivityTarget,
    /// The customer types it is offered for (customer activities); all when empty.
    pub customer_types: Vec<String>,
    /// When it was created.
    pub create_time: Timestamp,
    /// When it was last changed.
    pub update_time: Timestamp,
    /// Increases with every change (the etag).
    pub version: i64,
}

impl Activity {
    /// Its etag.
    pub fn etag(&self) -> String {
        super::organisation::etag_of(self.version)
    }
}
