//! Who is calling and whether it may call: principals, API tokens, the method policy, and
//! the tower layer that applies them to every RPC.

mod layer;
pub mod policy;
mod principal;
pub mod tokens;

pub use layer::AuthLayer;
pub use principal::{Principal, Role};
pub use tokens::{Authenticator, Stale};
