//! The one error type of the service and its one mapping to `tonic::Status`.
//!
//! Every layer below the API returns [`Error`]; [`From<Error> for Status`] is the only place
//! where errors become gRPC codes, with `google.rpc` details from tonic-types. Internal
//! errors are logged here with their detail and leave the service without it.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error this service returns.
pub const ERROR_DOMAIN: &str = "clientele";

/// How long a client is told to wait before it retries a request that met a concurrent write.
pub const CONFLICT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// The response header that marks an ABORTED answer as a concurrent write the service may run
/// again itself; the retry layer removes it before the answer leaves the service.
pub const CONFLICT_MARK: &str = "clientele-concurrent-write";

/// A problem with one field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `organisation.email_domains[2]`.
    pub field: String,
    /// What is wrong and what would be right.
    pub description: String,
}

/// A state of the system that stands in the way of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreconditionViolation {
    /// The kind of precondition, e.g. `OPEN_TICKETS`.
    pub kind: String,
    /// What the precondition is about, e.g. a ticket number.
    pub subject: String,
    /// What is wrong and how to resolve it.
    pub description: String,
}

/// Everything that can go wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong; nothing was changed.
    #[error("{}", describe_violations(.violations))]
    InvalidArgument {
        /// Machine-readable reason for `ErrorInfo`.
        reason: &'static str,
        /// Every field that is wrong.
        violations: Vec<FieldViolation>,
    },
    /// A `request_id` came back with a different request than the one it was first used for.
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    /// The resource does not exist, or the caller may not read it.
    #[error("{resource} not found")]
    NotFound {
        /// The kind of resource, e.g. `organisation`.
        resource: &'static str,
    },
    /// A unique value is already taken by another resource.
    #[error("another {resource} already has this {field}")]
    AlreadyExists {
        /// The kind of resource, e.g. `organisation`.
        resource: &'static str,
        /// The request field holding the taken value.
        field: String,
        /// Machine-readable reason for `ErrorInfo`.
        reason: &'static str,
    },
    /// The resource changed since the caller read it (its etag is stale).
    #[error("{resource} was changed by someone else; read it again and retry")]
    StaleEtag {
        /// The kind of resource.
        resource: &'static str,
    },
    /// The system is not in a state that allows the request.
    #[error("{message}")]
    FailedPrecondition {
        /// Machine-readable reason for `ErrorInfo`.
        reason: &'static str,
        /// A sentence for people.
        message: String,
        /// What stands in the way.
        violations: Vec<PreconditionViolation>,
    },
    /// The caller did not prove who it is: no, a malformed, unknown, expired or revoked
    /// token, or one whose owner has become invalid.
    #[error("{message}")]
    Unauthenticated {
        /// Machine-readable reason for `ErrorInfo`.
        reason: &'static str,
        /// A sentence for people.
        message: String,
    },
    /// The caller is known but may not do this.
    #[error("{message}")]
    PermissionDenied {
        /// Machine-readable reason for `ErrorInfo`.
        reason: &'static str,
        /// A sentence for people.
        message: String,
    },
    /// Stored data is damaged (an attachment whose content no longer matches its SHA-256).
    #[error("stored data is damaged: {0}")]
    DataLoss(String),
    /// The caller sent more than the service takes: a message over the size limit, more
    /// requests than its rate allows, or more than the server runs at once.
    #[error("{message}")]
    ResourceExhausted {
        /// Machine-readable reason for `ErrorInfo`.
        reason: &'static str,
        /// A sentence for people.
        message: String,
        /// When a retry may succeed, for `RetryInfo`.
        retry_after: Option<std::time::Duration>,
    },
    /// The server is shutting down: an open stream ends with this, so a client can tell it
    /// from a normal end and call again (another replica answers).
    #[error("the server is shutting down; call again")]
    ShuttingDown,
    /// A dependency (the database) cannot be reached; the request may be retried.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A write met another one at the same moment (a deadlock, a serialization failure, a row
    /// the other changed or removed under it) and was rolled back whole. The service runs a
    /// unary request again itself a few times ([`crate::server`]'s retry layer) before the
    /// client sees this; the detail is logged, never sent.
    #[error("another request changed the same data at the same moment; retry")]
    Conflict(String),
    /// A bug or an unexpected failure; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument {
            reason: "INVALID_FIELD",
            violations: vec![FieldViolation {
                field: field.into(),
                description: description.into(),
            }],
        }
    }

    /// Several invalid fields, or `Ok(())` when there are none.
    pub fn check(violations: Vec<FieldViolation>) -> Result<()> {
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Self::InvalidArgument {
                reason: "INVALID_FIELD",
                violations,
            })
        }
    }

    /// The caller may not do this.
    pub fn denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::PermissionDenied {
            reason,
            message: message.into(),
        }
    }

    /// Puts `prefix.` in front of every field path, for errors found in a nested message.
    pub fn within(self, prefix: &str) -> Self {
        let join = |field: String| {
            if field.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{field}")
            }
        };
        match self {
            Self::InvalidArgument { reason, violations } => Self::InvalidArgument {
                reason,
                violations: violations
                    .into_iter()
                    .map(|v| FieldViolation {
                        field: join(v.field),
                        description: v.description,
                    })
                    .collect(),
            },
            Self::AlreadyExists {
                resource,
                field,
                reason,
            } => Self::AlreadyExists {
                resource,
                field: join(field),
                reason,
            },
            other => other,
        }
    }
}

fn describe_violations(violations: &[FieldViolation]) -> String {
    let parts: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect();
    format!("invalid request: {}", parts.join("; "))
}

/// What a stream ended by a shutdown says.
const SHUTTING_DOWN_MESSAGE: &str = "the server is shutting down: call again and another \
     replica answers; a ticket list resumes from the resume_token of the last ticket received";

/// The longest `grpc-message` the service sends.
const MESSAGE_LIMIT: usize = 512;
/// The most the listed violations of one error take, before base64: with the message, far
/// under the 8 KiB of trailers every gRPC client accepts.
const VIOLATIONS_BUDGET: usize = 2560;
/// The longest field path or subject in a violation.
const NAME_LIMIT: usize = 200;
/// The longest description in a violation.
const DESCRIPTION_LIMIT: usize = 400;

/// `text` cut to at most `max` bytes at a character boundary, the cut marked with `…`: what
/// an error echoes of its input stays small, whatever the input.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// As many of `items` as fit [`VIOLATIONS_BUDGET`] (each bounded by `shorten`, its size given
/// by `size`), then one item made by `rest` saying how many more there were.
fn within_budget<T>(
    items: Vec<T>,
    shorten: impl Fn(T) -> T,
    size: impl Fn(&T) -> usize,
    rest: impl FnOnce(usize) -> T,
) -> Vec<T> {
    let total = items.len();
    let mut kept = Vec::new();
    let mut used = 0;
    for item in items {
        let item = shorten(item);
        let needed = size(&item) + 8;
        if used + needed > VIOLATIONS_BUDGET {
            break;
        }
        used += needed;
        kept.push(item);
    }
    if kept.len() < total {
        let more = total - kept.len();
        kept.push(rest(more));
    }
    kept
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = bounded(&error.to_string(), MESSAGE_LIMIT);
        match error {
            Error::InvalidArgument { reason, violations } => {
                let violations = within_budget(
                    violations,
                    |v| FieldViolation {
                        field: bounded(&v.field, NAME_LIMIT),
                        description: bounded(&v.description, DESCRIPTION_LIMIT),
                    },
                    |v| v.field.len() + v.description.len(),
                    |more| FieldViolation {
                        field: String::new(),
                        description: format!("and {more} more fields are invalid"),
                    },
                );
                let mut details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                details.set_error_info(reason, ERROR_DOMAIN, []);
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::RequestIdReused => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(
                    "request_id",
                    "was already used for a different request; use a new request_id",
                )
                .set_error_info("REQUEST_ID_REUSED", ERROR_DOMAIN, [])
                .to_owned(),
            ),
            Error::NotFound { resource } => Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_error_info(
                    "NOT_FOUND",
                    ERROR_DOMAIN,
                    [("resource".to_owned(), resource.to_owned())],
                ),
            ),
            Error::AlreadyExists {
                resource,
                field,
                reason,
            } => {
                let field = bounded(&field, NAME_LIMIT);
                let mut details = ErrorDetails::with_bad_request_violation(
                    field.clone(),
                    format!("another {resource} already has this value"),
                );
                details.set_error_info(reason, ERROR_DOMAIN, [("field".to_owned(), field)]);
                Status::with_error_details(Code::AlreadyExists, message, details)
            }
            Error::StaleEtag { resource } => Status::with_error_details(
                Code::Aborted,
                message,
                ErrorDetails::with_error_info(
                    "STALE_ETAG",
                    ERROR_DOMAIN,
                    [("resource".to_owned(), resource.to_owned())],
                ),
            ),
            Error::FailedPrecondition {
                reason, violations, ..
            } => {
                let violations = within_budget(
                    violations,
                    |v| PreconditionViolation {
                        kind: bounded(&v.kind, NAME_LIMIT),
                        subject: bounded(&v.subject, NAME_LIMIT),
                        description: bounded(&v.description, DESCRIPTION_LIMIT),
                    },
                    |v| v.kind.len() + v.subject.len() + v.description.len(),
                    |more| PreconditionViolation {
                        kind: "MORE".to_owned(),
                        subject: String::new(),
                        description: format!("and {more} more in the way"),
                    },
                );
                let mut details = ErrorDetails::with_precondition_failure(
                    violations
                        .into_iter()
                        .map(|v| {
                            tonic_types::PreconditionViolation::new(
                                v.kind,
                                v.subject,
                                v.description,
                            )
                        })
                        .collect::<Vec<_>>(),
                );
                details.set_error_info(reason, ERROR_DOMAIN, []);
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            Error::Unauthenticated { reason, .. } => Status::with_error_details(
                Code::Unauthenticated,
                message,
                ErrorDetails::with_error_info(reason, ERROR_DOMAIN, []),
            ),
            Error::PermissionDenied { reason, .. } => Status::with_error_details(
                Code::PermissionDenied,
                message,
                ErrorDetails::with_error_info(reason, ERROR_DOMAIN, []),
            ),
            Error::ResourceExhausted {
                reason,
                retry_after,
                ..
            } => {
                let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, []);
                if retry_after.is_some() {
                    details.set_retry_info(retry_after);
                }
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            Error::DataLoss(detail) => {
                tracing::error!(%detail, "request failed: stored data is damaged");
                Status::with_error_details(
                    Code::DataLoss,
                    "the stored content is damaged and cannot be delivered",
                    ErrorDetails::with_error_info("DATA_LOSS", ERROR_DOMAIN, []),
                )
            }
            Error::ShuttingDown => Status::with_error_details(
                Code::Unavailable,
                SHUTTING_DOWN_MESSAGE,
                ErrorDetails::with_error_info("SHUTTING_DOWN", ERROR_DOMAIN, [])
                    .set_retry_info(Some(std::time::Duration::ZERO))
                    .to_owned(),
            ),
            Error::Unavailable(detail) => {
                tracing::warn!(%detail, "request failed: dependency unavailable");
                Status::with_error_details(
                    Code::Unavailable,
                    "the service is temporarily unavailable; retry later",
                    ErrorDetails::with_error_info("UNAVAILABLE", ERROR_DOMAIN, []),
                )
            }
            Error::Conflict(detail) => {
                tracing::debug!(%detail, "request rolled back: a concurrent write");
                let mut status = Status::with_error_details(
                    Code::Aborted,
                    "another request changed the same data at the same moment; nothing was \
                     changed, retry the request",
                    ErrorDetails::with_error_info("CONCURRENT_WRITE", ERROR_DOMAIN, [])
                        .set_retry_info(Some(CONFLICT_RETRY_DELAY))
                        .to_owned(),
                );
                status.metadata_mut().insert(
                    CONFLICT_MARK,
                    tonic::metadata::MetadataValue::from_static("1"),
                );
                status
            }
            Error::Internal(detail) => {
                tracing::error!(%detail, "request failed: internal error");
                Status::with_error_details(
                    Code::Internal,
                    "internal error",
                    ErrorDetails::with_error_info("INTERNAL", ERROR_DOMAIN, []),
                )
            }
        }
    }
}
