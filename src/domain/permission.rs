//! Grants and the rights that follow from them (DESIGN §2 "Grants and permissions").

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use uuid::Uuid;

use super::{
    access::{Decision, Effective, Holder, Reason, Rights, Sources},
    changes,
    fields::Violations,
    paging::{self, Page},
    rights::{Administrator, StaffReader},
};
use crate::domain::access::ServiceWork;
use crate::{
    clock::Clock,
    domain::access::Principal,
    error::{Error, PreconditionViolation, Result},
    model::{
        ChangeKind, Customer, FieldChange, Grant, GrantContext, Group, Level, ResourceType,
        Subject, SubjectKind, Validity,
    },
    store::{GrantFilter, Store, TicketScope},
};

/// A principal whose rights are asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// An administrator.
    Admin,
    /// An agent.
    Agent(Uuid),
    /// A customer.
    Customer(Uuid),
}

/// A resource rights are asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// An organisation.
    Organisation(Uuid),
    /// A customer.
    Customer(Uuid),
    /// A group: all its tickets for agents, own tickets for customers.
    Group(Uuid),
    /// A ticket, through whichever path reaches it.
    Ticket(Uuid),
}

/// The ids of the valid groups, with the rights generation they were read at.
type KeptGroups = (u64, Arc<HashSet<Uuid>>);

/// How many principals' rights are kept.
const CACHED_RIGHTS: u64 = 100_000;

/// How long kept rights are used at most: the bound on how late a change another replica
/// made reaches this one should its notification be lost.
const RIGHTS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The grant rules and the rights engine, over the store.
#[derive(Clone, Debug)]
pub struct Permissions {
    store: Store,
    clock: Arc<dyn Clock>,
    /// Compiled rights by subject, with the rights generation they were read at: rights read
    /// before the generation moved are stale (see [`Store::rights_generation`]).
    rights: moka::sync::Cache<Subject, (u64, Arc<Rights>)>,
    /// The valid groups, with the rights generation they were read at: shared by every
    /// holder's rights.
    valid_groups: Arc<std::sync::Mutex<Option<KeptGroups>>>,
}

impl Permissions {
    /// The rules over `store`, reading time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            rights: moka::sync::Cache::builder()
                .max_capacity(CACHED_RIGHTS)
                .time_to_live(RIGHTS_TTL)
                .build(),
            valid_groups: Arc::default(),
        }
    }

    /// Grants `subject` `level` on `group_id` (in `context`, for organisations), or changes the
    /// level of its grant.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn grant(
        &self,
        admin: &Administrator,
        subject: Subject,
        group_id: Uuid,
        level: Level,
        context: GrantContext,
    ) -> Result<Grant> {
        check_context(subject.kind(), context)?;
        self.usable_group(group_id).await?;
        self.valid_subjects(&[subject]).await?;
        let now = self.clock.now();
        let existing = self.store.grant(subject, group_id, context).await?;
        let (grant, kind, changes) = match existing {
            Some(grant) if grant.level == level => return Ok(grant),
            Some(grant) => (
                Grant {
                    level,
                    update_time: now,
                    ..grant.clone()
                },
                ChangeKind::Updated,
                vec![level_change(Some(grant.level), Some(level))],
            ),
            None => (
                Grant {
                    id: Uuid::now_v7(),
                    subject,
                    group_id,
                    context,
                    level,
                    create_time: now,
                    update_time: now,
                },
                ChangeKind::Created,
                grant_fields(subject, group_id, context, level),
            ),
        };
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Grant,
            grant.id,
            kind,
            changes,
        );
        self.store
            .write_grants(std::slice::from_ref(&grant), &[], &[event])
            .await?;
        Ok(grant)
    }

    /// Takes away the grant of `subject` on `group_id` in `context`; false if there was none.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn revoke(
        &self,
        admin: &Administrator,
        subject: Subject,
        group_id: Uuid,
        context: GrantContext,
    ) -> Result<bool> {
        check_context(subject.kind(), context)?;
        let Some(grant) = self.store.grant(subject, group_id, context).await? else {
            return Ok(false);
        };
        let event = changes::event(
            admin.actor(),
            self.clock.now(),
            ResourceType::Grant,
            grant.id,
            ChangeKind::Deleted,
            vec![level_change(Some(grant.level), None)],
        );
        self.store.write_grants(&[], &[grant.id], &[event]).await?;
        Ok(true)
    }

    /// One page of the grants of a subject or of a group.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list(
        &self,
        _reader: &StaffReader,
        filter: GrantFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Grant>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&filter);
        let after: Option<Uuid> = paging::decode_token(page_token, &fingerprint)?;
        let items = self.store.list_grants(filter, after, limit + 1).await?;
        Ok(paging::page(items, limit, &fingerprint, |grant| grant.id))
    }

    /// Sets `level` (or none) for subjects of `kind` on `group_id` in one transaction: for
    /// `subject_ids`, or every valid subject of the kind when none are given. Returns how many
    /// grants changed.
    #[tracing::instrument(skip(self, admin, subject_ids), level = "debug", err(level = "debug"))]
    pub async fn set_group(
        &self,
        admin: &Administrator,
        group_id: Uuid,
        kind: SubjectKind,
        level: Option<Level>,
        context: GrantContext,
        subject_ids: Vec<Uuid>,
    ) -> Result<u64> {
        check_context(kind, context)?;
        self.usable_group(group_id).await?;
        let subjects: Vec<Uuid> = if subject_ids.is_empty() {
            self.store.valid_subjects(kind).await?
        } else {
            let subjects: Vec<Subject> = subject_ids
                .iter()
                .map(|id| Subject::of(kind, *id))
                .collect();
            self.valid_subjects(&subjects).await?;
            // A subject named twice is set once.
            let mut unique = subject_ids;
            unique.sort();
            unique.dedup();
            unique
        };
        let existing: HashMap<Uuid, Grant> = self
            .store
            .grants_on(group_id, kind, context)
            .await?
            .into_iter()
            .map(|grant| (grant.subject.id(), grant))
            .collect();
        let now = self.clock.now();
        let actor = admin.actor();
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        let mut events = Vec::new();
        for id in subjects {
            let subject = Subject::of(kind, id);
            match (existing.get(&id), level) {
                (Some(grant), None) => {
                    deletes.push(grant.id);
                    events.push(changes::event(
                        actor,
                        now,
                        ResourceType::Grant,
                        grant.id,
                        ChangeKind::Deleted,
                        vec![level_change(Some(grant.level), None)],
                    ));
                }
                (Some(grant), Some(level)) if grant.level != level => {
                    events.push(changes::event(
                        actor,
                        now,
                        ResourceType::Grant,
                        grant.id,
                        ChangeKind::Updated,
                        vec![level_change(Some(grant.level), Some(level))],
                    ));
                    puts.push(Grant {
                        level,
                        update_time: now,
                        ..grant.clone()
                    });
                }
                (None, Some(level)) => {
                    let grant = Grant {
                        id: Uuid::now_v7(),
                        subject,
                        group_id,
                        context,
                        level,
                        create_time: now,
                        update_time: now,
                    };
                    events.push(changes::event(
                        actor,
                        now,
                        ResourceType::Grant,
                        grant.id,
                        ChangeKind::Created,
                        grant_fields(subject, group_id, context, level),
                    ));
                    puts.push(grant);
                }
                _ => {}
            }
        }
        let changed = events.len() as u64;
        if changed > 0 {
            self.store.write_grants(&puts, &deletes, &events).await?;
        }
        Ok(changed)
    }

    /// May `who` have `wanted` on `resource`, and why.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn check(
        &self,
        _reader: &StaffReader,
        who: Asked,
        wanted: Level,
        resource: Resource,
    ) -> Result<Decision> {
        let everything = ServiceWork::RIGHTS_QUESTIONS.master_data();
        // The resource must exist, whoever asks.
        let mut ticket = None;
        match resource {
            Resource::Organisation(id) => {
                self.store
                    .organisation(&everything, id)
                    .await?
                    .ok_or(Error::NotFound {
                        resource: "organisation",
                    })?;
            }
            Resource::Customer(id) => {
                self.store
                    .customer(&everything, id)
                    .await?
                    .ok_or(Error::NotFound {
                        resource: "customer",
                    })?;
            }
            Resource::Group(id) => {
                self.store
                    .group(id)
                    .await?
                    .ok_or(Error::NotFound { resource: "group" })?;
            }
            Resource::Ticket(id) => {
                ticket = Some(
                    self.store
                        .ticket(&ServiceWork::RIGHTS_QUESTIONS.tickets(), id)
                        .await?
                        .ok_or(Error::NotFound { resource: "ticket" })?,
                );
            }
        }
        let subject = match who {
            Asked::Admin => return Ok(Decision::rule(true, Reason::Admin)),
            Asked::Agent(id) => {
                let agent = self
                    .store
                    .agent(id)
                    .await?
                    .ok_or(Error::NotFound { resource: "agent" })?;
                if !agent.validity.is_valid() {
                    return Ok(Decision::rule(false, Reason::PrincipalInvalid));
                }
                if let Resource::Organisation(_) | Resource::Customer(_) = resource {
                    return Ok(match wanted {
                        Level::Ro => Decision::rule(true, Reason::AgentReadsMasterData),
                        Level::Rw if agent.manage_customers => {
                            Decision::rule(true, Reason::ManageCustomers)
                        }
                        Level::Rw => Decision::rule(false, Reason::NoManageCustomers),
                    });
                }
                Subject::Agent(id)
            }
            Asked::Customer(id) => {
                let customer =
                    self.store
                        .customer(&everything, id)
                        .await?
                        .ok_or(Error::NotFound {
                            resource: "customer",
                        })?;
                if !customer.validity.is_valid() {
                    return Ok(Decision::rule(false, Reason::PrincipalInvalid));
                }
                match resource {
                    Resource::Customer(_) | Resource::Organisation(_) if wanted == Level::Rw => {
                        return Ok(Decision::rule(false, Reason::CustomersReadOnly));
                    }
                    Resource::Customer(other) if other == id => {
                        return Ok(Decision::rule(true, Reason::SelfRecord));
                    }
                    Resource::Organisation(org)
                        if customer.organisation_ids().any(|o| o == org) =>
                    {
                        return Ok(Decision::rule(true, Reason::OwnOrganisation));
                    }
                    Resource::Customer(_) | Resource::Organisation(_) => {
                        return Ok(Decision::rule(false, Reason::NotOwn));
                    }
                    Resource::Group(_) | Resource::Ticket(_) => Subject::Customer(id),
                }
            }
        };
        let rights = self.rights(subject).await?;
        Ok(match (resource, ticket) {
            (_, Some(ticket)) => rights.explain_ticket(
                ticket.group_id,
                ticket.organisation_id,
                ticket.customer_ids(),
                wanted,
            ),
            (Resource::Group(group_id), None) => rights.explain_group(group_id, wanted),
            // The other resources were answered above.
            (_, None) => Decision::rule(false, Reason::NoGrant),
        })
    }

    /// What `subject` may do on every group, and why.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn effective(
        &self,
        _reader: &StaffReader,
        subject: Subject,
    ) -> Result<Vec<Effective>> {
        self.valid_subjects(&[subject])
            .await
            .or_else(|error| match error {
                // An invalid subject has no rights at all; that is an answer, not an error.
                Error::FailedPrecondition { .. } => Ok(()),
                other => Err(other),
            })?;
        Ok(self.rights(subject).await?.effective())
    }

    /// The tickets `principal` may read (`Level::Ro`) or work on (`Level::Rw`): the scope
    /// every ticket query of theirs is filtered by.
    pub async fn ticket_scope(&self, principal: &Principal, level: Level) -> Result<TicketScope> {
        let subject = match principal {
            Principal::Admin { .. } => return Ok(Rights::admin_scope()),
            Principal::Agent { agent_id, .. } => Subject::Agent(*agent_id),
            Principal::Customer { customer_id, .. } => Subject::Customer(*customer_id),
        };
        Ok(self.rights(subject).await?.scope(level).clone())
    }

    /// Whether customer `customer` may use group `group_id` for its own tickets at `level`.
    pub(crate) async fn customer_may_use(
        &self,
        customer: &Customer,
        group_id: Uuid,
        level: Level,
    ) -> Result<bool> {
        Ok(self
            .rights(Subject::Customer(customer.id))
            .await?
            .explain_group(group_id, level)
            .allowed)
    }

    /// The rights of `subject`. Kept until a change that may change rights commits (on this
    /// replica before the write returns; from another replica as its notification arrives,
    /// and within [`RIGHTS_TTL`] at the latest).
    pub(crate) async fn rights(&self, subject: Subject) -> Result<Arc<Rights>> {
        // The generation is read first: a change committed while the rights are read leaves
        // them marked with the generation before, so that they are read again.
        let generation = self.store.rights_generation();
        if let Some((read_at, rights)) = self.rights.get(&subject)
            && read_at == generation
        {
            return Ok(rights);
        }
        let rights = Arc::new(self.read_rights(subject, generation).await?);
        self.rights.insert(subject, (generation, rights.clone()));
        Ok(rights)
    }

    /// Reads what shapes the rights of `subject` and compiles them.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    async fn read_rights(&self, subject: Subject, generation: u64) -> Result<Rights> {
        let everything = ServiceWork::RIGHTS_QUESTIONS.master_data();
        let (holder, subjects) = match subject {
            Subject::Agent(id) => {
                let valid = self
                    .store
                    .agent(id)
                    .await?
                    .is_some_and(|agent| agent.validity.is_valid());
                (Holder::Agent { id, valid }, vec![subject])
            }
            Subject::Organisation(id) => {
                let org =
                    self.store
                        .organisation(&everything, id)
                        .await?
                        .ok_or(Error::NotFound {
                            resource: "organisation",
                        })?;
                let valid = org.validity.is_valid();
                (Holder::Organisation { id, valid }, vec![subject])
            }
            Subject::Customer(id) => match self.store.customer(&everything, id).await? {
                Some(customer) if customer.validity.is_valid() => {
                    let mut organisations = Vec::new();
                    for id in customer.organisation_ids() {
                        if let Some(org) = self.store.organisation(&everything, id).await?
                            && org.validity.is_valid()
                        {
                            organisations.push(org.id);
                        }
                    }
                    let mut subjects = vec![subject];
                    subjects.extend(organisations.iter().map(|id| Subject::Organisation(*id)));
                    let holder = Holder::Customer {
                        id,
                        valid: true,
                        organisations,
                    };
                    (holder, subjects)
                }
                _ => {
                    let holder = Holder::Customer {
                        id,
                        valid: false,
                        organisations: Vec::new(),
                    };
                    (holder, Vec::new())
                }
            },
        };
        let grants = if subjects.is_empty() {
            Vec::new()
        } else {
            self.store.grants_of(&subjects).await?
        };
        Ok(Rights::compile(Sources {
            holder,
            grants,
            settings: &self.store.settings().await?,
            valid_groups: self.valid_group_ids(generation).await?,
        }))
    }

    /// The ids of every valid group, read once per rights generation.
    async fn valid_group_ids(&self, generation: u64) -> Result<Arc<HashSet<Uuid>>> {
        if let Some((read_at, ids)) = self.kept_valid_groups()
            && read_at == generation
        {
            return Ok(ids);
        }
        let ids: Arc<HashSet<Uuid>> =
            Arc::new(self.store.valid_group_ids().await?.into_iter().collect());
        *self
            .valid_groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((generation, ids.clone()));
        Ok(ids)
    }

    fn kept_valid_groups(&self) -> Option<KeptGroups> {
        self.valid_groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The group must exist (INVALID_ARGUMENT) and be valid (FAILED_PRECONDITION).
    async fn usable_group(&self, group_id: Uuid) -> Result<Group> {
        let group =
            self.store.group(group_id).await?.ok_or_else(|| {
                Error::invalid("group_id", format!("no group has the id {group_id}"))
            })?;
        if !group.validity.is_valid() {
            return Err(Error::FailedPrecondition {
                reason: "GROUP_INVALID",
                message: format!("group {} is invalid and takes no grants", group.name),
                violations: vec![PreconditionViolation {
                    kind: "GROUP_INVALID".into(),
                    subject: group.id.to_string(),
                    description: "reactivate the group first".into(),
                }],
            });
        }
        Ok(group)
    }

    /// Every subject must exist (INVALID_ARGUMENT) and be valid (FAILED_PRECONDITION).
    async fn valid_subjects(&self, subjects: &[Subject]) -> Result<()> {
        let everything = ServiceWork::RIGHTS_QUESTIONS.master_data();
        let mut violations = Violations::default();
        let mut invalid = Vec::new();
        for (index, subject) in subjects.iter().enumerate() {
            let validity = match subject {
                Subject::Agent(id) => self.store.agent(*id).await?.map(|a| a.validity),
                Subject::Customer(id) => self
                    .store
                    .customer(&everything, *id)
                    .await?
                    .map(|c| c.validity),
                Subject::Organisation(id) => self
                    .store
                    .organisation(&everything, *id)
                    .await?
                    .map(|o| o.validity),
            };
            let field = if subjects.len() == 1 {
                "subject".to_owned()
            } else {
                format!("subject_ids[{index}]")
            };
            match validity {
                None => violations.add(
                    field,
                    format!("no {} has the id {}", subject.kind().as_str(), subject.id()),
                ),
                Some(Validity::Valid) => {}
                Some(_) => invalid.push(*subject),
            }
        }
        violations.finish()?;
        if invalid.is_empty() {
            return Ok(());
        }
        Err(Error::FailedPrecondition {
            reason: "SUBJECT_INVALID",
            message: "an invalid agent, customer or organisation takes no grants".into(),
            violations: invalid
                .iter()
                .map(|subject| PreconditionViolation {
                    kind: "SUBJECT_INVALID".into(),
                    subject: subject.id().to_string(),
                    description: format!("the {} is invalid", subject.kind().as_str()),
                })
                .collect(),
        })
    }
}

/// Organisations' grants name a context; agents' and customers' grants none.
fn check_context(kind: SubjectKind, context: GrantContext) -> Result<()> {
    match (kind, context) {
        (SubjectKind::Organisation, GrantContext::None) => Err(Error::invalid(
            "context",
            "an organisation's grant needs SAME_ORGANISATION or OTHER_ORGANISATIONS",
        )),
        (SubjectKind::Agent | SubjectKind::Customer, GrantContext::None)
        | (SubjectKind::Organisation, _) => Ok(()),
        _ => Err(Error::invalid(
            "context",
            "only organisations' grants have a context",
        )),
    }
}

fn level_change(old: Option<Level>, new: Option<Level>) -> FieldChange {
    FieldChange {
        field: "level".into(),
        old: serde_json::json!(old),
        new: serde_json::json!(new),
    }
}

fn grant_fields(
    subject: Subject,
    group_id: Uuid,
    context: GrantContext,
    level: Level,
) -> Vec<FieldChange> {
    let set = |field: &str, value: serde_json::Value| FieldChange {
        field: field.into(),
        old: serde_json::Value::Null,
        new: value,
    };
    vec![
        set("subject", serde_json::json!(subject)),
        set("group_id", serde_json::json!(group_id)),
        set("context", serde_json::json!(context)),
        set("level", serde_json::json!(level)),
    ]
}
