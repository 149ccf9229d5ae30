//! Clientele: the customer master of a helpdesk as one gRPC service.
//!
//! A request travels: the server's layers (tracing, then authentication) → an [`api`]
//! adapter (decode, convert) → the [`domain`] (rules) → the [`store`] (one transaction with
//! its change-log event) → back. [`run`] starts the whole service on a listener; `main.rs`
//! and the tests both use it.
// The futures of the RPCs nest the store's generic one-row read (`store::direct`) inside
// tonic's and sqlx's own: computing their layout needs more than the default 128 levels.
#![recursion_limit = "256"]

pub mod api;
pub mod auth;
pub mod clock;
pub mod domain;
pub mod error;
pub mod ldap;
pub mod metrics;
pub mod model;
pub mod proto;
pub mod retry;
pub mod server;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod testing;

pub use server::{Config, run};
