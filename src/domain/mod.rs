//! The rules of the helpdesk's customer master: validation, normalisation, what may change
//! and how, and which change-log event each change writes. No proto or tonic types here.

pub mod country;
pub mod email_domain;
pub mod fields;
pub mod organisation;
pub mod paging;

pub use organisation::Organisations;
