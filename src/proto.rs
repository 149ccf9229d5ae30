//! The generated gRPC code of `proto/clientele/v1` and its descriptor set.

/// Messages, clients and servers of the package `clientele.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("clientele.v1");
}

/// The encoded `FileDescriptorSet` of every proto file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/clientele_descriptor.bin"));
