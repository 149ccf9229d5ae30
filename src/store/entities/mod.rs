//! sea-orm entities, one per table. Times are microseconds since the Unix epoch.

pub mod agent;
pub mod change_event;
pub mod customer;
pub mod customer_email;
pub mod customer_organisation;
pub mod grant;
pub mod group;
pub mod idempotency_key;
pub mod organisation;
pub mod organisation_domain;
pub mod settings;
pub mod token;
