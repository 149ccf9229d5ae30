//! The generated gRPC code of `proto/clientele/v1` and its descriptor set.

/// The package `clientele`.
pub mod clientele {
    /// Messages, clients and servers of the package `clientele.v1`.
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("clientele.v1");
    }
}

/// The googleapis packages the contract uses beside `google.rpc` (which tonic-types has).
pub mod google {
    /// `google.type`: calendar dates, times of day and weekdays.
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod r#type {
        tonic::include_proto!("google.r#type");
    }

    /// `google.api`: field behaviours.
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

pub mod codec;

pub use clientele::v1;

/// The encoded `FileDescriptorSet` of every proto file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/clientele_descriptor.bin"));
