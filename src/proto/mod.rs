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

/// A method of the contract's services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method {
    /// `/package.Service/Method`, as in a request's path.
    pub path: String,
    /// Whether the client sends a stream.
    pub client_streaming: bool,
    /// Whether the server answers with a stream.
    pub server_streaming: bool,
}

/// Every method of the contract's services, as the descriptor set lists them.
pub fn methods() -> Vec<Method> {
    use prost::Message;
    let Ok(set) = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET) else {
        return Vec::new();
    };
    set.file
        .iter()
        .flat_map(|file| {
            file.service.iter().flat_map(move |service| {
                service.method.iter().map(move |method| Method {
                    path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                })
            })
        })
        .collect()
}
