//! One adapter per gRPC service: decode the request, call the domain, encode the answer.
//! No SQL and no business rules here; errors become `Status` through `crate::error`.

pub mod agent;
pub mod catalogue;
pub mod change;
pub mod comment;
pub mod contact_group;
pub mod customer;
pub mod customer_source;
pub mod directory;
pub mod group;
pub mod organisation;
pub mod permission;
pub mod price_list;
pub mod privacy;
pub mod sla;
pub mod ticket;
pub mod webhook;

pub use agent::AgentApi;
pub use catalogue::FieldCatalogueApi;
pub use change::ChangeApi;
pub use comment::CommentApi;
pub use contact_group::ContactGroupApi;
pub use customer::CustomerApi;
pub use customer_source::CustomerSourceApi;
pub use directory::DirectoryApi;
pub use group::GroupApi;
pub use organisation::OrganisationApi;
pub use permission::PermissionApi;
pub use price_list::PriceListApi;
pub use privacy::PrivacyApi;
pub use sla::SlaApi;
pub use ticket::TicketApi;
pub use webhook::WebhookApi;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tonic::Request;
use uuid::Uuid;

use crate::{
    auth::Principal,
    domain::{
        access::Scope,
        import::ImportSummary,
        rights::{self, Administrator, MasterDataWriter, StaffReader},
    },
    error::{Error, Result},
    model::{Severity, Validity},
    proto::v1 as pb,
};

/// Who is calling, as the auth layer established it.
pub(crate) fn principal<T>(request: &Request<T>) -> Result<Principal> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Error::Unauthenticated {
            reason: "MISSING_CREDENTIALS",
            message: "send an API token as `authorization: Bearer <token>`".into(),
        })
}

/// The caller's right to write master data.
pub(crate) fn writer<T>(request: &Request<T>) -> Result<MasterDataWriter> {
    rights::master_data_writer(&principal(request)?)
}

/// The caller's right to read what only staff read.
pub(crate) fn staff<T>(request: &Request<T>) -> Result<StaffReader> {
    rights::staff_reader(&principal(request)?)
}

/// The caller's right to administer.
pub(crate) fn admin<T>(request: &Request<T>) -> Result<Administrator> {
    rights::administrator(&principal(request)?)
}

/// What the caller may read.
pub(crate) fn scope<T>(request: &Request<T>) -> Result<Scope> {
    Ok(principal(request)?.scope())
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

/// A protobuf timestamp as a time, cut to the microsecond the database keeps (so what a
/// client is answered is what a later read returns); out-of-range ones are refused.
pub(crate) fn parse_time(
    field: &str,
    raw: Option<prost_types::Timestamp>,
) -> Result<Option<jiff::Timestamp>> {
    raw.map(|raw| {
        jiff::Timestamp::new(raw.seconds, raw.nanos)
            .and_then(|time| jiff::Timestamp::from_microsecond(time.as_microsecond()))
            .map_err(|_| Error::invalid(field, "is not a valid time"))
    })
    .transpose()
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

/// A severity from the API; unspecified is `None` (not assessed).
pub(crate) fn severity_from_proto(field: &str, raw: i32) -> Result<Option<Severity>> {
    match pb::Severity::try_from(raw) {
        Ok(pb::Severity::Unspecified) => Ok(None),
        Ok(pb::Severity::Critical) => Ok(Some(Severity::Critical)),
        Ok(pb::Severity::High) => Ok(Some(Severity::High)),
        Ok(pb::Severity::Medium) => Ok(Some(Severity::Medium)),
        Ok(pb::Severity::Low) => Ok(Some(Severity::Low)),
        Err(_) => Err(Error::invalid(field, format!("{raw} is not a Severity"))),
    }
}

/// A severity for the API.
pub(crate) fn severity_to_proto(severity: Option<Severity>) -> i32 {
    match severity {
        None => pb::Severity::Unspecified,
        Some(Severity::Critical) => pb::Severity::Critical,
        Some(Severity::High) => pb::Severity::High,
        Some(Severity::Medium) => pb::Severity::Medium,
        Some(Severity::Low) => pb::Severity::Low,
    }
    .into()
}

/// The most ids one list field of a request may carry: every id becomes a bound parameter
/// of a query, and databases allow only so many (SQLite 32,766, PostgreSQL 65,535).
pub(crate) const MAX_IDS: usize = 1000;

/// Resource ids sent by a client, each named `field[index]` when wrong; at most
/// [`MAX_IDS`] of them.
pub(crate) fn parse_ids(field: &str, raw: &[String]) -> Result<Vec<Uuid>> {
    if raw.len() > MAX_IDS {
        return Err(Error::invalid(
            field,
            format!("must list at most {MAX_IDS} ids"),
        ));
    }
    let mut violations = Vec::new();
    let mut ids = Vec::with_capacity(raw.len());
    for (index, id) in raw.iter().enumerate() {
        match parse_id(&format!("{field}[{index}]"), id) {
            Ok(id) => ids.push(id),
            Err(Error::InvalidArgument { violations: v, .. }) => violations.extend(v),
            Err(other) => return Err(other),
        }
    }
    Error::check(violations)?;
    Ok(ids)
}

/// Both results, or every violation of either: a client learns all its wrong fields at once.
pub(crate) fn both<A, B>(a: Result<A>, b: Result<B>) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (
            Err(Error::InvalidArgument {
                reason,
                mut violations,
            }),
            Err(Error::InvalidArgument {
                violations: more, ..
            }),
        ) => {
            violations.extend(more);
            Err(Error::InvalidArgument { reason, violations })
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    }
}

/// An optional resource id: empty means none.
pub(crate) fn parse_optional_id(field: &str, raw: &str) -> Result<Option<Uuid>> {
    if raw.is_empty() {
        Ok(None)
    } else {
        parse_id(field, raw).map(Some)
    }
}

/// An optional id for the API: empty means none.
pub(crate) fn optional_id(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

/// An import summary for the API.
pub(crate) fn summary_to_proto(summary: ImportSummary) -> pb::ImportSummary {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    pb::ImportSummary {
        rows: count(summary.rows),
        created: count(summary.created),
        updated: count(summary.updated),
        unchanged: count(summary.unchanged),
        failed: count(summary.failed),
        errors: summary
            .errors
            .into_iter()
            .map(|error| pb::ImportRowError {
                row_number: count(error.row),
                reason: error.reason,
                message: error.message,
                fields: error
                    .fields
                    .into_iter()
                    .map(|v| pb::ImportFieldError {
                        field: v.field,
                        description: v.description,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Whether a client-streaming request's body ended in an error (the client cancelled the
/// call or its connection broke) rather than with the client's end of stream. Read it after
/// the stream ended: a request whose body broke off must not be acted on as complete.
#[derive(Clone, Debug, Default)]
pub struct BrokenOff(Arc<AtomicBool>);

impl BrokenOff {
    /// Whether the request's body broke off.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Records that the request's body broke off; the transport calls it.
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}
