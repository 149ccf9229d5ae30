//! Groups: what tickets live in and what rights are granted on.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::{
    changes::{self, Audit, Etag, check_etag},
    fields::{self, Violations},
    paging::{self, Page},
    rights::Administrator,
};
use crate::{
    clock::Clock,
    error::{Error, PreconditionViolation, Result},
    model::{ChangeKind, Group, ResourceType, Validity},
    store::{Cursor, Store, group_cursor},
};

/// The values a client sends for a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupInput {
    /// Name.
    pub name: String,
    /// Free text.
    pub comment: String,
    /// Validity; `None` means valid.
    pub validity: Option<Validity>,
    /// The agent tickets are routed to.
    pub responsible_agent_id: Option<Uuid>,
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
}

impl GroupField {
    /// Every updatable field.
    pub const ALL: [Self; 4] = [
        Self::Name,
        Self::Comment,
        Self::Validity,
        Self::ResponsibleAgentId,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Comment => "comment",
            Self::Validity => "validity",
            Self::ResponsibleAgentId => "responsible_agent_id",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, |path| match path {
            "id" | "create_time" | "update_time" | "etag" => Some(format!("{path} is output only")),
            _ => None,
        })
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
    pub async fn create(&self, admin: &Administrator, input: &GroupInput) -> Result<Group> {
        let now = self.clock.now();
        let mut group = Group {
            id: Uuid::now_v7(),
            name: String::new(),
            comment: String::new(),
            validity: Validity::Valid,
            responsible_agent_id: None,
            create_time: now,
            update_time: now,
            version: 1,
        };
        let mut violations = Violations::default();
        for field in GroupField::ALL {
            apply(&mut violations, &mut group, field, input);
        }
        violations.finish()?;
        self.check_agent(group.responsible_agent_id, None).await?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Group,
            group.id,
            ChangeKind::Created,
            changes::diff(None, &audit(&group)),
        );
        self.store.insert_group(&group, &event).await
    }

    /// Reads one group.
    pub async fn get(&self, key: &GroupKey) -> Result<Group> {
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
        let current = self.get(&GroupKey::Id(id)).await?;
        check_etag("group", &current.etag(), Etag::Required(etag))?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply(&mut violations, &mut next, *field, input);
        }
        violations.finish()?;
        self.check_agent(next.responsible_agent_id, current.responsible_agent_id)
            .await?;
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

    /// A newly named responsible agent must exist and be valid.
    async fn check_agent(&self, agent: Option<Uuid>, before: Option<Uuid>) -> Result<()> {
        let Some(id) = agent.filter(|id| Some(*id) != before) else {
            return Ok(());
        };
        match self.store.agent(id).await? {
            None => Err(Error::invalid(
                "responsible_agent_id",
                format!("no agent has the id {id}"),
            )),
            Some(agent) if !agent.validity.is_valid() => Err(Error::FailedPrecondition {
                reason: "AGENT_INVALID",
                message: format!("agent {} is invalid", agent.login),
                violations: vec![PreconditionViolation {
                    kind: "AGENT_INVALID".into(),
                    subject: id.to_string(),
                    description: "an invalid agent cannot be responsible for a group".into(),
                }],
            }),
            Some(_) => Ok(()),
        }
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
    }
}

fn audit(group: &Group) -> Audit {
    vec![
        ("name", json!(group.name)),
        ("comment", json!(group.comment)),
        ("validity", json!(group.validity)),
        ("responsible_agent_id", json!(group.responsible_agent_id)),
    ]
}
