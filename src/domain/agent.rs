//! Agents: the staff who work tickets.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::{
    changes::{self, Audit, check_etag},
    email::normalise_email,
    fields::{self, Violations},
    paging::{self, Page},
    rights::{Administrator, StaffReader},
};
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::{Agent, ChangeKind, DetailsAccess, ResourceType, Validity},
    store::{Cursor, Store, agent_cursor},
};

/// The values a client sends for an agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AgentInput {
    /// Login name.
    pub login: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Email address, or empty.
    pub email: String,
    /// The customer administrator flag.
    pub manage_customers: bool,
    /// What the agent may do with notes on organisations and customers; `None` on create
    /// means write for customer administrators, read for the others.
    pub details_access: Option<DetailsAccess>,
    /// Validity; `None` means valid.
    pub validity: Option<Validity>,
}

/// The fields an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentField {
    /// `login`
    Login,
    /// `first_name`
    FirstName,
    /// `last_name`
    LastName,
    /// `email`
    Email,
    /// `manage_customers`
    ManageCustomers,
    /// `details_access`
    DetailsAccess,
    /// `validity`
    Validity,
}

impl AgentField {
    /// Every updatable field.
    pub const ALL: [Self; 7] = [
        Self::Login,
        Self::FirstName,
        Self::LastName,
        Self::Email,
        Self::ManageCustomers,
        Self::DetailsAccess,
        Self::Validity,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::Email => "email",
            Self::ManageCustomers => "manage_customers",
            Self::DetailsAccess => "details_access",
            Self::Validity => "validity",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, fields::output_only)
    }
}

/// Which agent to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentKey {
    /// By id.
    Id(Uuid),
    /// By login, case-insensitively.
    Login(String),
}

/// The agent rules, over the store.
#[derive(Clone, Debug)]
pub struct Agents {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Agents {
    /// The rules over `store`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Creates an agent; with `request_id`, a retry returns the first result.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn create(
        &self,
        admin: &Administrator,
        input: &AgentInput,
        request_id: Option<String>,
    ) -> Result<Agent> {
        let now = self.clock.now();
        let mut agent = Agent {
            id: Uuid::now_v7(),
            login: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            email: String::new(),
            manage_customers: false,
            details_access: DetailsAccess::Read,
            validity: Validity::Valid,
            create_time: now,
            update_time: now,
            version: 1,
        };
        let mut violations = Violations::default();
        for field in AgentField::ALL {
            apply(&mut violations, &mut agent, field, input);
        }
        violations.finish()?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Agent,
            agent.id,
            ChangeKind::Created,
            changes::diff(None, &audit(&agent)),
        );
        let key = fields::idempotency_key("CreateAgent", admin.actor(), request_id, input);
        let inserted = self
            .store
            .insert_agent(&agent, &event, key.as_ref())
            .await?;
        fields::created(inserted, key.as_ref(), async |id| {
            self.get(&admin.reader(), &AgentKey::Id(id)).await
        })
        .await
    }

    /// Reads one agent.
    pub async fn get(&self, _reader: &StaffReader, key: &AgentKey) -> Result<Agent> {
        let found = match key {
            AgentKey::Id(id) => self.store.agent(*id).await?,
            AgentKey::Login(login) => self.store.agent_by_login(login).await?,
        };
        found.ok_or(Error::NotFound { resource: "agent" })
    }

    /// Changes `fields` of agent `id`, if `etag` is current.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn update(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[AgentField],
        input: &AgentInput,
    ) -> Result<Agent> {
        let current = self.get(&admin.reader(), &AgentKey::Id(id)).await?;
        check_etag("agent", &current.etag(), etag)?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        // In the order of ALL, whatever the mask's: details_access's default follows
        // manage_customers as it will be.
        for field in AgentField::ALL.iter().filter(|f| fields.contains(f)) {
            apply(&mut violations, &mut next, *field, input);
        }
        violations.finish()?;
        let changes = changes::diff(Some(&audit(&current)), &audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            admin.actor(),
            next.update_time,
            ResourceType::Agent,
            id,
            ChangeKind::Updated,
            changes,
        );
        let agent = self
            .store
            .update_agent(&next, current.version, &event)
            .await?;
        Ok(agent)
    }

    /// One page of agents.
    pub async fn list(
        &self,
        _reader: &StaffReader,
        include_invalid: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Agent>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("agents", include_invalid));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_agents(include_invalid, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, agent_cursor))
    }
}

fn apply(violations: &mut Violations, agent: &mut Agent, field: AgentField, input: &AgentInput) {
    let name = field.name();
    match field {
        AgentField::Login => {
            let login = input.login.trim();
            if login.is_empty() {
                violations.add(name, "is required");
            } else if login.chars().count() > 100 {
                violations.add(name, "must be at most 100 characters long");
            } else if login.chars().any(|c| c.is_whitespace() || c.is_control()) {
                violations.add(name, "must not contain white space or control characters");
            }
            agent.login = login.to_owned();
        }
        AgentField::FirstName => {
            agent.first_name = fields::single_line(violations, name, &input.first_name, 100, false)
        }
        AgentField::LastName => {
            agent.last_name = fields::single_line(violations, name, &input.last_name, 100, false)
        }
        AgentField::Email => {
            agent.email = if input.email.trim().is_empty() {
                String::new()
            } else {
                match normalise_email(&input.email) {
                    Ok(email) => email,
                    Err(problem) => {
                        violations.add(name, problem);
                        String::new()
                    }
                }
            }
        }
        AgentField::ManageCustomers => agent.manage_customers = input.manage_customers,
        AgentField::DetailsAccess => {
            agent.details_access = input
                .details_access
                .unwrap_or(DetailsAccess::default_for(agent.manage_customers));
        }
        AgentField::Validity => agent.validity = input.validity.unwrap_or(Validity::Valid),
    }
}

fn audit(agent: &Agent) -> Audit {
    vec![
        ("login", json!(agent.login)),
        ("first_name", json!(agent.first_name)),
        ("last_name", json!(agent.last_name)),
        ("email", json!(agent.email)),
        ("manage_customers", json!(agent.manage_customers)),
        ("details_access", json!(agent.details_access)),
        ("validity", json!(agent.validity)),
    ]
}
