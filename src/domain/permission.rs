//! Grants and the rights that follow from them (DESIGN §2 "Grants and permissions").

use std::{collections::HashMap, sync::Arc};

use uuid::Uuid;

use super::{
    changes,
    fields::Violations,
    paging::{self, Page},
    rights::Administrator,
};
use crate::{
    clock::Clock,
    domain::access::Principal,
    error::{Error, PreconditionViolation, Result},
    model::{
        ChangeKind, Customer, FieldChange, Grant, GrantContext, Group, Level, ResourceType,
        Subject, SubjectKind, Ticket, Validity,
    },
    store::{GrantFilter, Scope, Store, TicketPaths, TicketScope},
};

/// Why access was given or refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Admins may do everything.
    Admin,
    /// Agents read all organisations and customers.
    AgentReadsMasterData,
    /// The agent has the manage_customers flag.
    ManageCustomers,
    /// The agent lacks the manage_customers flag.
    NoManageCustomers,
    /// A grant of the principal itself.
    OwnGrant,
    /// A grant of one of the customer's organisations.
    OrganisationGrant,
    /// The group is an always-group.
    AlwaysGroups,
    /// The group is a company-always-group.
    CompanyAlwaysGroups,
    /// customer_group_support is off.
    CustomerGroupSupportOff,
    /// The customer is the resource.
    SelfRecord,
    /// The organisation is the customer's.
    OwnOrganisation,
    /// Customers may not change the customer master.
    CustomersReadOnly,
    /// Nothing gives this access.
    NoGrant,
    /// The principal is invalid.
    PrincipalInvalid,
    /// The group is invalid.
    GroupInvalid,
    /// Not the customer's own record or organisation.
    NotOwn,
}

/// Whose tickets of a group a right covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Whose {
    /// A customer's own tickets.
    Own,
    /// The tickets of the customer's organisations.
    Organisation,
    /// Every ticket of the group.
    All,
}

/// One thing that gives a level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Basis {
    /// The level given.
    pub level: Level,
    /// What gives it.
    pub reason: Reason,
    /// The grant, when a grant gives it.
    pub grant: Option<Grant>,
}

impl Basis {
    /// Which of several bases names the cause best: a grant of one's own before an
    /// organisation's, grants before settings.
    fn priority(&self) -> u8 {
        match self.reason {
            Reason::OwnGrant => 0,
            Reason::OrganisationGrant => 1,
            Reason::AlwaysGroups => 2,
            Reason::CompanyAlwaysGroups => 3,
            _ => 4,
        }
    }
}

/// The answer to "may P do L on R".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether it may.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// The grant that decided, if one did.
    pub grant: Option<Grant>,
    /// For a ticket: the path that reached it.
    pub whose: Option<Whose>,
}

impl Decision {
    fn rule(allowed: bool, reason: Reason) -> Self {
        Self {
            allowed,
            reason,
            grant: None,
            whose: None,
        }
    }
}

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

/// What a subject may do on the tickets of one group, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    /// The group.
    pub group_id: Uuid,
    /// Whose tickets.
    pub scope: Whose,
    /// The best basis.
    pub basis: Basis,
}

/// Every basis a subject has, by group and ticket scope.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rights {
    bases: HashMap<(Uuid, Whose), Vec<Basis>>,
    /// A customer's SAME_ORGANISATION bases by group and the organisation that holds them:
    /// each reaches only that organisation's tickets (the same bases, without the
    /// organisation, are under [`Whose::Organisation`] in `bases`, for listing).
    organisation_bases: HashMap<(Uuid, Uuid), Vec<Basis>>,
}

impl Rights {
    fn add(&mut self, group_id: Uuid, scope: Whose, basis: Basis) {
        self.bases.entry((group_id, scope)).or_default().push(basis);
    }

    /// Adds a basis on the tickets of `organisation` in `group_id`.
    fn add_for_organisation(&mut self, group_id: Uuid, organisation: Uuid, basis: Basis) {
        self.organisation_bases
            .entry((group_id, organisation))
            .or_default()
            .push(basis.clone());
        self.add(group_id, Whose::Organisation, basis);
    }

    /// The basis that gives `wanted` on the tickets of `organisation` in `group_id`.
    fn decide_for_organisation(
        &self,
        group_id: Uuid,
        organisation: Uuid,
        wanted: Level,
    ) -> Option<&Basis> {
        self.organisation_bases
            .get(&(group_id, organisation))?
            .iter()
            .filter(|basis| basis.level.covers(wanted))
            .min_by_key(|basis| basis.priority())
    }

    /// Per organisation, the groups whose tickets of that organisation are reached at
    /// `wanted` or better.
    fn organisation_groups(&self, wanted: Level) -> Vec<(Uuid, Vec<Uuid>)> {
        let mut by_organisation: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for ((group, organisation), bases) in &self.organisation_bases {
            if bases.iter().any(|basis| basis.level.covers(wanted)) {
                by_organisation
                    .entry(*organisation)
                    .or_default()
                    .push(*group);
            }
        }
        by_organisation.into_iter().collect()
    }

    /// The basis that gives `wanted` on `group_id` for `scope`, preferring the clearest cause.
    pub(crate) fn decide(&self, group_id: Uuid, scope: Whose, wanted: Level) -> Option<&Basis> {
        self.bases
            .get(&(group_id, scope))?
            .iter()
            .filter(|basis| basis.level.covers(wanted))
            .min_by_key(|basis| basis.priority())
    }

    /// The groups on which `whose` tickets are reached at `wanted` or better.
    fn groups(&self, whose: Whose, wanted: Level) -> Vec<Uuid> {
        self.bases
            .iter()
            .filter(|((_, w), bases)| {
                *w == whose && bases.iter().any(|basis| basis.level.covers(wanted))
            })
            .map(|((group, _), _)| *group)
            .collect()
    }

    /// The best level per group and scope, ordered by group then scope.
    fn effective(&self) -> Vec<Effective> {
        let mut all: Vec<Effective> = self
            .bases
            .iter()
            .filter_map(|((group_id, scope), bases)| {
                let best = bases
                    .iter()
                    .max_by(|a, b| a.level.cmp(&b.level).then(b.priority().cmp(&a.priority())))?;
                Some(Effective {
                    group_id: *group_id,
                    scope: *scope,
                    basis: best.clone(),
                })
            })
            .collect();
        all.sort_by_key(|e| (e.group_id, e.scope));
        all
    }
}

/// How many principals' ticket scopes are kept.
const CACHED_SCOPES: u64 = 100_000;

/// How long a kept ticket scope is used at most: the bound on how late a change another
/// replica made reaches this one should its notification be lost.
const SCOPE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The grant rules and the rights engine, over the store.
#[derive(Clone, Debug)]
pub struct Permissions {
    store: Store,
    clock: Arc<dyn Clock>,
    /// Ticket scopes by subject and level, with the rights generation they were read at: a
    /// scope read before the generation moved is stale (see [`Store::rights_generation`]).
    scopes: moka::sync::Cache<(Subject, Level), (u64, TicketScope)>,
}

impl Permissions {
    /// The rules over `store`, reading time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            scopes: moka::sync::Cache::builder()
                .max_capacity(CACHED_SCOPES)
                .time_to_live(SCOPE_TTL)
                .build(),
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
    pub async fn check(&self, who: Asked, wanted: Level, resource: Resource) -> Result<Decision> {
        let everything = Scope::everything();
        // The resource must exist, whoever asks.
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
            Resource::Ticket(_) => {}
        }
        let ticket = match resource {
            Resource::Ticket(id) => Some(
                self.store
                    .ticket(&TicketScope::everything(), id)
                    .await?
                    .ok_or(Error::NotFound { resource: "ticket" })?,
            ),
            _ => None,
        };
        match who {
            Asked::Admin => Ok(Decision::rule(true, Reason::Admin)),
            Asked::Agent(id) => {
                let agent = self
                    .store
                    .agent(id)
                    .await?
                    .ok_or(Error::NotFound { resource: "agent" })?;
                if !agent.validity.is_valid() {
                    return Ok(Decision::rule(false, Reason::PrincipalInvalid));
                }
                Ok(match (resource, wanted) {
                    (Resource::Organisation(_) | Resource::Customer(_), Level::Ro) => {
                        Decision::rule(true, Reason::AgentReadsMasterData)
                    }
                    (Resource::Organisation(_) | Resource::Customer(_), Level::Rw) => {
                        if agent.manage_customers {
                            Decision::rule(true, Reason::ManageCustomers)
                        } else {
                            Decision::rule(false, Reason::NoManageCustomers)
                        }
                    }
                    (Resource::Group(group_id), _) => {
                        let rights = self.rights_of(Subject::Agent(id)).await?;
                        self.group_decision(&rights, group_id, Whose::All, wanted)
                            .await?
                    }
                    (Resource::Ticket(_), _) => {
                        let group_id = ticket.as_ref().map_or(Uuid::nil(), |t| t.group_id);
                        let rights = self.rights_of(Subject::Agent(id)).await?;
                        let mut decision = self
                            .group_decision(&rights, group_id, Whose::All, wanted)
                            .await?;
                        decision.whose = decision.allowed.then_some(Whose::All);
                        decision
                    }
                })
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
                Ok(match resource {
                    Resource::Customer(_) | Resource::Organisation(_) if wanted == Level::Rw => {
                        Decision::rule(false, Reason::CustomersReadOnly)
                    }
                    Resource::Customer(other) if other == id => {
                        Decision::rule(true, Reason::SelfRecord)
                    }
                    Resource::Organisation(org)
                        if customer.organisation_ids().any(|o| o == org) =>
                    {
                        Decision::rule(true, Reason::OwnOrganisation)
                    }
                    Resource::Customer(_) | Resource::Organisation(_) => {
                        Decision::rule(false, Reason::NotOwn)
                    }
                    Resource::Group(group_id) => {
                        let rights = self.customer_rights(&customer).await?;
                        self.group_decision(&rights, group_id, Whose::Own, wanted)
                            .await?
                    }
                    Resource::Ticket(_) => match &ticket {
                        Some(ticket) => {
                            self.customer_ticket_decision(&customer, ticket, wanted)
                                .await?
                        }
                        None => Decision::rule(false, Reason::NoGrant),
                    },
                })
            }
        }
    }

    /// What `subject` may do on every group, and why.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn effective(&self, subject: Subject) -> Result<Vec<Effective>> {
        self.valid_subjects(&[subject])
            .await
            .or_else(|error| match error {
                // An invalid subject has no rights at all; that is an answer, not an error.
                Error::FailedPrecondition { .. } => Ok(()),
                other => Err(other),
            })?;
        let rights = match subject {
            Subject::Customer(id) => {
                let customer = self.store.customer(&Scope::everything(), id).await?.ok_or(
                    Error::NotFound {
                        resource: "customer",
                    },
                )?;
                if !customer.validity.is_valid() {
                    return Ok(Vec::new());
                }
                self.customer_rights(&customer).await?
            }
            other => self.rights_of(other).await?,
        };
        let mut effective = rights.effective();
        let groups = self
            .valid_groups(effective.iter().map(|e| e.group_id))
            .await?;
        effective.retain(|e| groups.contains_key(&e.group_id));
        Ok(effective)
    }

    /// Which path, if any, gives customer `customer` `wanted` on `ticket`: its own ticket,
    /// its organisation's, or any ticket of the group.
    async fn customer_ticket_decision(
        &self,
        customer: &Customer,
        ticket: &Ticket,
        wanted: Level,
    ) -> Result<Decision> {
        let (rights, organisations) = self.customer_rights_and_organisations(customer).await?;
        let valid = self
            .store
            .group(ticket.group_id)
            .await?
            .is_some_and(|group| group.validity.is_valid());
        if !valid {
            return Ok(Decision::rule(false, Reason::GroupInvalid));
        }
        let own = ticket
            .has_customer(customer.id)
            .then(|| rights.decide(ticket.group_id, Whose::Own, wanted))
            .flatten()
            .map(|basis| (Whose::Own, basis));
        // Only the ticket's own organisation's grants reach it on this path.
        let organisation = ticket
            .organisation_id
            .filter(|org| organisations.contains(org))
            .and_then(|org| rights.decide_for_organisation(ticket.group_id, org, wanted))
            .map(|basis| (Whose::Organisation, basis));
        let all = rights
            .decide(ticket.group_id, Whose::All, wanted)
            .map(|basis| (Whose::All, basis));
        Ok(match own.or(organisation).or(all) {
            Some((whose, basis)) => Decision {
                allowed: true,
                reason: basis.reason,
                grant: basis.grant.clone(),
                whose: Some(whose),
            },
            None => Decision::rule(false, Reason::NoGrant),
        })
    }

    /// The tickets `principal` may read (`Level::Ro`) or work on (`Level::Rw`): the scope
    /// every ticket query of theirs is filtered by. Kept until a change that may change rights
    /// commits (on this replica before the write returns; from another replica as its
    /// notification arrives, and within [`SCOPE_TTL`] at the latest).
    pub async fn ticket_scope(&self, principal: &Principal, level: Level) -> Result<TicketScope> {
        let subject = match principal {
            Principal::Admin { .. } => return Ok(TicketScope::everything()),
            Principal::Agent { agent_id, .. } => Subject::Agent(*agent_id),
            Principal::Customer { customer_id, .. } => Subject::Customer(*customer_id),
        };
        // The generation is read first: a change committed while the scope is read leaves it
        // marked with the generation before, so that it is read again.
        let generation = self.store.rights_generation();
        if let Some((read_at, scope)) = self.scopes.get(&(subject, level))
            && read_at == generation
        {
            return Ok(scope);
        }
        let scope = self.read_ticket_scope(principal, level).await?;
        self.scopes
            .insert((subject, level), (generation, scope.clone()));
        Ok(scope)
    }

    /// The ticket scope of `principal` at `level`, read from grants, settings and validity.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    async fn read_ticket_scope(&self, principal: &Principal, level: Level) -> Result<TicketScope> {
        let mut paths = TicketPaths::default();
        match principal {
            Principal::Admin { .. } => return Ok(TicketScope::everything()),
            Principal::Agent { agent_id, .. } => {
                let rights = self.rights_of(Subject::Agent(*agent_id)).await?;
                paths.all_groups = rights.groups(Whose::All, level);
            }
            Principal::Customer { customer_id, .. } => {
                let Some(customer) = self
                    .store
                    .customer(&Scope::everything(), *customer_id)
                    .await?
                    .filter(|c| c.validity.is_valid())
                else {
                    return Ok(TicketScope::paths(paths));
                };
                let rights = self.customer_rights(&customer).await?;
                paths.own_groups = rights.groups(Whose::Own, level);
                paths.organisation_groups = rights.organisation_groups(level);
                paths.all_groups = rights.groups(Whose::All, level);
                paths.customer = Some(customer.id);
            }
        }
        let mentioned = paths
            .all_groups
            .iter()
            .chain(
                paths
                    .organisation_groups
                    .iter()
                    .flat_map(|(_, groups)| groups),
            )
            .chain(&paths.own_groups)
            .copied();
        let valid = self.valid_groups(mentioned).await?;
        for groups in [&mut paths.all_groups, &mut paths.own_groups]
            .into_iter()
            .chain(
                paths
                    .organisation_groups
                    .iter_mut()
                    .map(|(_, groups)| groups),
            )
        {
            groups.retain(|group| valid.contains_key(group));
        }
        Ok(TicketScope::paths(paths))
    }

    /// Whether customer `customer` may use group `group_id` for its own tickets at `level`.
    pub(crate) async fn customer_may_use(
        &self,
        customer: &Customer,
        group_id: Uuid,
        level: Level,
    ) -> Result<bool> {
        let rights = self.customer_rights(customer).await?;
        Ok(self
            .group_decision(&rights, group_id, Whose::Own, level)
            .await?
            .allowed)
    }

    /// The bases of an agent or organisation: its grants (only valid agents and organisations
    /// have any).
    async fn rights_of(&self, subject: Subject) -> Result<Rights> {
        let mut rights = Rights::default();
        if let Subject::Agent(id) = subject
            && !self
                .store
                .agent(id)
                .await?
                .is_some_and(|agent| agent.validity.is_valid())
        {
            return Ok(rights);
        }
        if let Subject::Organisation(id) = subject {
            let Some(org) = self.store.organisation(&Scope::everything(), id).await? else {
                return Err(Error::NotFound {
                    resource: "organisation",
                });
            };
            if !org.validity.is_valid() {
                return Ok(rights);
            }
            let settings = self.store.settings().await?;
            for group_id in &settings.company_always_groups {
                rights.add(*group_id, Whose::Organisation, company_always());
            }
        }
        for grant in self.store.grants_of(&[subject]).await? {
            let scope = match grant.context {
                GrantContext::OtherOrganisations => Whose::All,
                GrantContext::SameOrganisation => Whose::Organisation,
                GrantContext::None => Whose::All,
            };
            rights.add(grant.group_id, scope, granted(Reason::OwnGrant, grant));
        }
        Ok(rights)
    }

    /// The bases of a valid customer (DESIGN §2, paths a, b and c).
    pub(crate) async fn customer_rights(&self, customer: &Customer) -> Result<Rights> {
        Ok(self.customer_rights_and_organisations(customer).await?.0)
    }

    /// The bases of a valid customer and its valid organisations.
    async fn customer_rights_and_organisations(
        &self,
        customer: &Customer,
    ) -> Result<(Rights, Vec<Uuid>)> {
        let settings = self.store.settings().await?;
        let mut organisations = Vec::new();
        for id in customer.organisation_ids() {
            if let Some(org) = self.store.organisation(&Scope::everything(), id).await?
                && org.validity.is_valid()
            {
                organisations.push(org.id);
            }
        }
        let mut subjects = vec![Subject::Customer(customer.id)];
        subjects.extend(organisations.iter().map(|id| Subject::Organisation(*id)));
        let mut rights = Rights::default();
        for grant in self.store.grants_of(&subjects).await? {
            match (grant.subject, grant.context) {
                (Subject::Customer(_), _) => {
                    rights.add(grant.group_id, Whose::Own, granted(Reason::OwnGrant, grant));
                }
                (subject, context) => {
                    rights.add(
                        grant.group_id,
                        Whose::Own,
                        granted(Reason::OrganisationGrant, grant.clone()),
                    );
                    match (subject, context) {
                        (_, GrantContext::OtherOrganisations) => rights.add(
                            grant.group_id,
                            Whose::All,
                            granted(Reason::OrganisationGrant, grant),
                        ),
                        (Subject::Organisation(organisation), _) => rights.add_for_organisation(
                            grant.group_id,
                            organisation,
                            granted(Reason::OrganisationGrant, grant),
                        ),
                        _ => {}
                    }
                }
            }
        }
        for group_id in &settings.always_groups {
            rights.add(*group_id, Whose::Own, rule(Level::Rw, Reason::AlwaysGroups));
        }
        for group_id in &settings.company_always_groups {
            if !organisations.is_empty() {
                rights.add(*group_id, Whose::Own, company_always());
            }
            for organisation in &organisations {
                rights.add_for_organisation(*group_id, *organisation, company_always());
            }
        }
        if !settings.customer_group_support {
            for group in self.all_valid_groups().await? {
                rights.add(
                    group.id,
                    Whose::Own,
                    rule(Level::Rw, Reason::CustomerGroupSupportOff),
                );
            }
        }
        Ok((rights, organisations))
    }

    async fn group_decision(
        &self,
        rights: &Rights,
        group_id: Uuid,
        scope: Whose,
        wanted: Level,
    ) -> Result<Decision> {
        let valid = self
            .store
            .group(group_id)
            .await?
            .is_some_and(|group| group.validity.is_valid());
        if !valid {
            return Ok(Decision::rule(false, Reason::GroupInvalid));
        }
        Ok(match rights.decide(group_id, scope, wanted) {
            Some(basis) => Decision {
                allowed: true,
                reason: basis.reason,
                grant: basis.grant.clone(),
                whose: None,
            },
            None => Decision::rule(false, Reason::NoGrant),
        })
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
        let everything = Scope::everything();
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

    async fn valid_groups(&self, ids: impl Iterator<Item = Uuid>) -> Result<HashMap<Uuid, Group>> {
        let ids: Vec<Uuid> = ids.collect();
        Ok(self
            .store
            .groups(&ids)
            .await?
            .into_iter()
            .filter(|group| group.validity.is_valid())
            .map(|group| (group.id, group))
            .collect())
    }

    async fn all_valid_groups(&self) -> Result<Vec<Group>> {
        let mut groups = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store.list_groups(false, cursor.as_ref(), 1000).await?;
            let done = page.len() < 1000;
            cursor = page.last().map(crate::store::group_cursor);
            groups.extend(page);
            if done {
                return Ok(groups);
            }
        }
    }
}

fn granted(reason: Reason, grant: Grant) -> Basis {
    Basis {
        level: grant.level,
        reason,
        grant: Some(grant),
    }
}

fn rule(level: Level, reason: Reason) -> Basis {
    Basis {
        level,
        reason,
        grant: None,
    }
}

fn company_always() -> Basis {
    rule(Level::Rw, Reason::CompanyAlwaysGroups)
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
