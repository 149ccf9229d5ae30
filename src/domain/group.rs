//! Groups: what tickets live in and what rights are granted on.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::{
    changes::{self, Audit, check_etag},
    fields::{self, Violations},
    paging::{self, Page},
    references,
    rights::{Administrator, StaffReader},
};
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::{ChangeKind, Group, ResourceType, Validity},
    store::{Cursor, Store, group_cursor},
};

/// The values a client sends for a group.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GroupInput {
    /// Name.
    pub name: String,
    /// Free text.
    pub comment: String,
    /// Validity; `None` means valid.
    pub validity: Option<Validity>,
    /// The agent tickets are routed to.
    pub responsible_agent_id: Option<Uuid>,
    /// The SLA policy of its tickets.
    pub default_sla_policy_id: Option<Uuid>,
}

/// The fields an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupField {
    /// `name`
    Name,
    /// `comment`
    Comment,
    /// `validity`
    Validity,
    /// `responsible_agent_id`
    ResponsibleAgentId,
    /// `default_sla_policy_id`
    DefaultSlaPolicyId,
}

impl GroupField {
    /// Every updatable field.
    pub const ALL: [Self; 5] = [
        Self::Name,
        Self::Comment,
        Self::Validity,
        Self::ResponsibleAgentId,
        Self::DefaultSlaPolicyId,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Comment => "comment",
            Self::Validity => "validity",
            Self::ResponsibleAgentId => "responsible_agent_id",
            Self::DefaultSlaPolicyId => "default_sla_policy_id",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, fields::output_only)
    }
}

/// Which group to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupKey {
    /// By id.
    Id(Uuid),
    /// By name, case-insensitively.
    Name(String),
}

/// The group rules, over the store.
#[derive(Clone, Debug)]
pub struct Groups {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Groups {
    /// The rules over `store`, reading time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Creates a group.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn create(
        &self,
        admin: &Administrator,
        input: &GroupInput,
        request_id: Option<String>,
    ) -> Result<Group> {
        let now = self.clock.now();
        let mut group = Group {
            id: Uuid::now_v7(),
            name: String::new(),
            comment: String::new(),
            validity: Validity::Valid,
            responsible_agent_id: None,
            default_sla_policy_id: None,
            create_time: now,
            update_time: now,
            version: 1,
        };
        let mut violations = Violations::default();
        for field in GroupField::ALL {
            apply(&mut violations, &mut group, field, input);
        }
        violations.finish()?;
        self.check_references(&group, None).await?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Group,
            group.id,
            ChangeKind::Created,
            changes::diff(None, &audit(&group)),
        );
        let key = fields::idempotency_key("CreateGroup", admin.actor(), request_id, input);
        let inserted = self
            .store
            .insert_group(&group, &event, key.as_ref())
            .await?;
        fields::created(inserted, key.as_ref(), async |id| {
            self.get(&admin.reader(), &GroupKey::Id(id)).await
        })
        .await
    }

    /// Reads one group.
    pub async fn get(&self, _reader: &StaffReader, key: &GroupKey) -> Result<Group> {
        let found = match key {
            GroupKey::Id(id) => self.store.group(*id).await?,
            GroupKey::Name(name) => self.store.group_by_name(name).await?,
        };
        found.ok_or(Error::NotFound { resource: "group" })
    }

    /// Changes `fields` of group `id`, if `etag` is current.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn update(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[GroupField],
        input: &GroupInput,
    ) -> Result<Group> {
        let current = self.get(&admin.reader(), &GroupKey::Id(id)).await?;
        check_etag("group", &current.etag(), etag)?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply(&mut violations, &mut next, *field, input);
        }
        violations.finish()?;
        self.check_references(&next, Some(&current)).await?;
        let changes = changes::diff(Some(&audit(&current)), &audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            admin.actor(),
            next.update_time,
            ResourceType::Group,
            id,
            ChangeKind::Updated,
            changes,
        );
        self.store
            .update_group(&next, current.version, &event)
            .await
    }

    /// One page of groups.
    pub async fn list(
        &self,
        _reader: &StaffReader,
        include_invalid: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Group>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("groups", include_invalid));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_groups(include_invalid, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, group_cursor))
    }

    /// A newly named responsible agent must be valid, a newly named SLA policy must exist.
    async fn check_references(&self, next: &Group, current: Option<&Group>) -> Result<()> {
        references::check_changed(
            &self.store,
            (
                "responsible_agent_id",
                current.and_then(|c| c.responsible_agent_id),
                next.responsible_agent_id,
            ),
            (
                "default_sla_policy_id",
                current.and_then(|c| c.default_sla_policy_id),
                next.default_sla_policy_id,
            ),
        )
        .await
    }
}

fn apply(violations: &mut Violations, group: &mut Group, field: GroupField, input: &GroupInput) {
    let name = field.name();
    match field {
        GroupField::Name => {
            group.name = fields::single_line(violations, name, &input.name, 100, true)
        }
        GroupField::Comment => {
            group.comment = fields::multi_line(violations, name, &input.comment, 10_000)
        }
        GroupField::Validity => group.validity = input.validity.unwrap_or(Validity::Valid),
        GroupField::ResponsibleAgentId => group.responsible_agent_id = input.responsible_agent_id,
        GroupField::DefaultSlaPolicyId => group.default_sla_policy_id = input.default_sla_policy_id,
    }
}

fn audit(group: &Group) -> Audit {
    vec![
        ("name", json!(group.name)),
        ("comment", json!(group.comment)),
        ("validity", json!(group.validity)),
        ("responsible_agent_id", json!(group.responsible_agent_id)),
        ("default_sla_policy_id", json!(group.default_sla_policy_id)),
    ]
}
