//! Building change-log events: which audited fields differ, and the event that records it.

use serde_json::Value;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{Actor, ChangeEvent, ChangeKind, FieldChange, ResourceType},
};

/// Whether a change must name the version it was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Etag<'a> {
    /// Updates: the etag is required (lost-update protection is not optional).
    Required(&'a str),
    /// State changes such as deactivation: checked when the client sends one.
    Optional(Option<&'a str>),
}

/// Refuses a change made from another version than `current` of `resource`.
pub(crate) fn check_etag(resource: &'static str, current: &str, sent: Etag<'_>) -> Result<()> {
    let sent = match sent {
        Etag::Required("") => {
            return Err(Error::invalid(
                "etag",
                format!("is required: send the etag of the {resource} as you read it"),
            ));
        }
        Etag::Required(etag) => Some(etag),
        Etag::Optional(etag) => etag.filter(|etag| !etag.is_empty()),
    };
    match sent {
        Some(etag) if etag != current => Err(Error::StaleEtag { resource }),
        _ => Ok(()),
    }
}

/// A record's audited fields and their values, in the order of the API.
pub(crate) type Audit = Vec<(&'static str, Value)>;

/// The fields that differ between `before` (none on creation) and `after`.
pub(crate) fn diff(before: Option<&Audit>, after: &Audit) -> Vec<FieldChange> {
    after
        .iter()
        .enumerate()
        .filter_map(|(index, (field, new))| {
            let old = before
                .and_then(|values| values.get(index))
                .map_or(Value::Null, |(_, value)| value.clone());
            (old != *new).then(|| FieldChange {
                field: (*field).to_owned(),
                old,
                new: new.clone(),
            })
        })
        .collect()
}

/// The event recording `kind` of `resource_type` `id` by `actor` at `time`.
pub(crate) fn event(
    actor: &Actor,
    time: jiff::Timestamp,
    resource_type: ResourceType,
    id: Uuid,
    kind: ChangeKind,
    changes: Vec<FieldChange>,
) -> ChangeEvent {
    ChangeEvent {
        time,
        actor: actor.clone(),
        resource_type,
        resource_id: id,
        kind,
        changes,
    }
}
