//! Client-side commands of the `clientele` binary: they talk to a running server.

pub mod import;
