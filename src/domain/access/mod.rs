//! Who the caller is and what it may do: the one place rights are decided. The auth layer
//! only takes the bearer secret from a request, has [`Authenticator`] verify it, and hands
//! the [`Principal`] it stands for to the services.

mod authenticator;
mod principal;
mod rights;
mod secret;
mod service_work;

/// The scopes the access module makes, defined by the store that filters by them.
pub use crate::store::{Scope, TicketScope};
pub(crate) use authenticator::unauthenticated;
pub use authenticator::{Authenticator, CACHE_TTL};
pub use principal::{Principal, Role};
pub use rights::{Basis, Decision, Effective, Reason, Rights, Whose};
pub(crate) use rights::{Holder, Sources};
pub use secret::{MIN_SECRET_LENGTH, hash_secret, new_secret};
pub use service_work::ServiceWork;
