//! sea-orm entities, one per table. Times are microseconds since the Unix epoch.

pub mod activity;
pub mod agent;
pub mod attachment;
pub mod attachment_chunk;
pub mod change_event;
pub mod comment;
pub mod comment_recipient;
pub mod customer;
pub mod customer_email;
pub mod customer_organisation;
pub mod grant;
pub mod group;
pub mod idempotency_key;
pub mod organisation;
pub mod organisation_domain;
pub mod settings;
pub mod sla_calendar;
pub mod sla_policy;
pub mod ticket;
pub mod ticket_counter;
pub mod ticket_customer;
pub mod token;
pub mod webhook;
pub mod webhook_delivery;
