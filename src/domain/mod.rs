//! The rules of the helpdesk's customer master: validation, normalisation, what may change
//! and how, and which change-log event each change writes. No proto or tonic types here.

pub mod access;
pub mod agent;
pub mod attachment;
pub mod business_time;
pub mod change_feed;
pub(crate) mod changes;
pub mod comment;
pub mod country;
pub mod customer;
pub mod customer_fields;
mod customer_merge;
pub(crate) mod domain_assignment;
pub mod email;
pub mod email_domain;
pub mod escalation;
pub mod fields;
pub mod group;
pub mod import;
pub mod organisation;
pub mod organisation_fields;
pub mod paging;
pub mod permission;
pub(crate) mod references;
pub mod rights;
pub mod settings;
pub mod sla;
pub mod stream_rights;
pub mod ticket;
pub mod ticket_list;
pub mod token;
pub mod watch;
pub mod webhook;

pub use agent::Agents;
pub use change_feed::ChangeFeed;
pub use comment::Comments;
pub use customer::Customers;
pub use group::Groups;
pub use organisation::Organisations;
pub use permission::Permissions;
pub use settings::SettingsRules;
pub use sla::Slas;
pub use ticket::Tickets;
pub use token::Tokens;
pub use watch::Escalations;
pub use webhook::Webhooks;
