//! Building change-log events: which audited fields differ, and the event that records it.

use serde_json::Value;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    model::{Actor, ChangeEvent, ChangeKind, FieldChange, ResourceType},
};

/// Refuses a change made from another version than `current` of `resource`. One rule for
/// every change of an existing resource (updates, deactivation, deletion, merges): the etag
/// as the client read it is required, so that no change is made blind.
pub(crate) fn check_etag(resource: &'static str, current: &str, sent: &str) -> Result<()> {
    check_etag_of("etag", resource, current, sent)
}

/// [`check_etag`] for a request that names the etag in `field`.
pub(crate) fn check_etag_of(
    field: &'static str,
    resource: &'static str,
    current: &str,
    sent: &str,
) -> Result<()> {
    if sent.is_empty() {
        return Err(Error::invalid(
            field,
            format!("is required: send the etag of the {resource} as you read it"),
        ));
    }
    if sent != current {
        return Err(Error::StaleEtag { resource });
    }
    Ok(())
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
