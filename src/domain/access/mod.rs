//! Who the caller is and what it may do: the one place rights are decided. The auth layer
//! only authenticates a token and hands the [`Principal`] it stands for to the services.

mod principal;
mod rights;
mod secret;
mod service_work;

pub use principal::{Principal, Role};
pub use rights::{Basis, Decision, Effective, Reason, Rights, Whose};
pub(crate) use rights::{Holder, Sources};
pub use secret::{MIN_SECRET_LENGTH, hash_secret, new_secret};
pub use service_work::ServiceWork;
