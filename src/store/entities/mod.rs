//! sea-orm entities, one per table. Times are microseconds since the Unix epoch.

pub mod change_event;
pub mod idempotency_key;
pub mod organisation;
pub mod organisation_domain;
