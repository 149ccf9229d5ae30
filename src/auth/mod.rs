//! Who is calling and whether it may call: API tokens, the method policy, and the tower layer
//! that applies them to every RPC and hands the caller's principal (`domain::access`) on.

mod layer;
pub mod policy;
pub mod rate;
pub mod tokens;

pub use crate::domain::access::{Authenticator, Principal, Role};
pub use layer::AuthLayer;
