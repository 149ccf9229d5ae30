//! One adapter per gRPC service: decode the request, call the domain, encode the answer.
//! No SQL and no business rules here; errors become `Status` through `crate::error`.

pub mod organisation;

pub use organisation::OrganisationApi;

use tonic::Request;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{Actor, Validity},
    proto::v1 as pb,
};

/// Who is calling, for the change log.
pub(crate) fn actor<T>(_request: &Request<T>) -> Actor {
    Actor::anonymous()
}

/// A resource id sent by a client.
pub(crate) fn parse_id(field: &str, raw: &str) -> Result<Uuid> {
    if raw.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    Uuid::parse_str(raw).map_err(|_| Error::invalid(field, "is not a valid id (a UUID)"))
}

/// A time for the API.
pub(crate) fn timestamp(time: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.as_second(),
        nanos: time.subsec_nanosecond(),
    }
}

/// A validity for the API.
pub(crate) fn validity_to_proto(validity: Validity) -> i32 {
    match validity {
        Validity::Valid => pb::Validity::Valid,
        Validity::Invalid => pb::Validity::Invalid,
        Validity::InvalidTemporarily => pb::Validity::InvalidTemporarily,
    }
    .into()
}

/// A validity from the API; unspecified is `None`.
pub(crate) fn validity_from_proto(field: &str, raw: i32) -> Result<Option<Validity>> {
    match pb::Validity::try_from(raw) {
        Ok(pb::Validity::Unspecified) => Ok(None),
        Ok(pb::Validity::Valid) => Ok(Some(Validity::Valid)),
        Ok(pb::Validity::Invalid) => Ok(Some(Validity::Invalid)),
        Ok(pb::Validity::InvalidTemporarily) => Ok(Some(Validity::InvalidTemporarily)),
        Err(_) => Err(Error::invalid(field, format!("{raw} is not a Validity"))),
    }
}
