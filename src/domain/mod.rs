//! The rules of the helpdesk's customer master: validation, normalisation, what may change
//! and how, and which change-log event each change writes. No proto or tonic types here.

pub(crate) mod changes;
pub mod country;
pub mod customer;
pub mod customer_fields;
mod customer_merge;
pub(crate) mod domain_assignment;
pub mod email;
pub mod email_domain;
pub mod fields;
pub mod import;
pub mod organisation;
pub mod paging;
pub mod settings;

pub use customer::Customers;
pub use organisation::Organisations;
pub use settings::SettingsRules;
