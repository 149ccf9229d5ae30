//! The rights of one agent, customer or organisation as a value, compiled once from everything
//! that shapes them: its grants (and, for a customer, its organisations' grants), the settings
//! (`customer_group_support`, `always_groups`, `company_always_groups`), which groups are valid,
//! whether the holder itself is valid, and a customer's valid organisations (DESIGN §2).
//!
//! Every answer about tickets comes from this one value: the [`TicketScope`] every ticket query
//! is filtered by (its SQL condition, and its in-memory check of a streamed item or event), and
//! the explanation `CheckPermission` gives. A property test below shows the three agree.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use uuid::Uuid;

use crate::{
    model::{Directory, Grant, GrantContext, Level, Settings, Subject},
    store::{Scope, TicketPaths, TicketScope},
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
    /// The ticket is limited to the readers of its reader group, and the holder is not one.
    ReaderGroup,
    /// The contact is filed in a directory the agent may not read.
    Directory,
    /// The contact is filed in a directory the agent reads.
    DirectoryReader,
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
    fn granted(reason: Reason, grant: Grant) -> Self {
        Self {
            level: grant.level,
            reason,
            grant: Some(grant),
        }
    }

    fn rule(level: Level, reason: Reason) -> Self {
        Self {
            level,
            reason,
            grant: None,
        }
    }

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
    /// A decision no grant made.
    pub(crate) fn rule(allowed: bool, reason: Reason) -> Self {
        Self {
            allowed,
            reason,
            grant: None,
            whose: None,
        }
    }

    fn by(whose: Option<Whose>, basis: &Basis) -> Self {
        Self {
            allowed: true,
            reason: basis.reason,
            grant: basis.grant.clone(),
            whose,
        }
    }
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

/// Whose rights are compiled, with the facts about it that shape them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// An administrator: every ticket, by its role.
    Admin,
    /// An agent.
    Agent {
        /// The agent.
        id: Uuid,
        /// Whether it is valid (an invalid agent has no rights).
        valid: bool,
    },
    /// An organisation (its rights are asked about; it never calls).
    Organisation {
        /// The organisation.
        id: Uuid,
        /// Whether it is valid.
        valid: bool,
    },
    /// A customer.
    Customer {
        /// The customer.
        id: Uuid,
        /// Whether it is valid.
        valid: bool,
        /// Its organisations that are valid: only they lend it their grants.
        organisations: Vec<Uuid>,
    },
}

/// What rights are compiled from.
pub(crate) struct Sources<'a> {
    /// Whose rights.
    pub holder: Holder,
    /// The grants of the holder and, for a customer, of its organisations; others are ignored.
    pub grants: Vec<Grant>,
    /// The settings.
    pub settings: &'a Settings,
    /// Every valid group.
    pub valid_groups: Arc<HashSet<Uuid>>,
    /// Every directory (none: directories are not in use).
    pub directories: Arc<Vec<Directory>>,
}

/// The rights of one holder. Cheap to ask: every answer is a lookup.
#[derive(Clone, Debug)]
pub struct Rights {
    holder: Holder,
    /// Every basis by group and whose tickets it covers.
    bases: HashMap<(Uuid, Whose), Vec<Basis>>,
    /// A customer's SAME_ORGANISATION bases by group and the organisation that holds them:
    /// each reaches only that organisation's tickets (the same bases, without the
    /// organisation, are under [`Whose::Organisation`] in `bases`, for listing).
    organisation_bases: HashMap<(Uuid, Uuid), Vec<Basis>>,
    valid_groups: Arc<HashSet<Uuid>>,
    /// The tickets the holder may read.
    read: TicketScope,
    /// The tickets the holder may work on.
    write: TicketScope,
    /// The contacts (customers and organisations) an agent reads: filed in no directory or in
    /// one it reads; every contact while no directory exists, and for the other holders,
    /// whose reach their role decides.
    contacts: Scope,
}

impl Rights {
    /// Compiles the rights `sources` give.
    pub(crate) fn compile(sources: Sources<'_>) -> Self {
        let Sources {
            holder,
            grants,
            settings,
            valid_groups,
            directories,
        } = sources;
        let mut rights = Self {
            holder,
            bases: HashMap::new(),
            organisation_bases: HashMap::new(),
            valid_groups,
            read: TicketScope::everything(),
            write: TicketScope::everything(),
            contacts: Scope::agent(None),
        };
        match rights.holder.clone() {
            Holder::Admin
            | Holder::Agent { valid: false, .. }
            | Holder::Organisation { valid: false, .. }
            | Holder::Customer { valid: false, .. } => {}
            Holder::Agent { id, valid: true } => {
                for grant in grants
                    .into_iter()
                    .filter(|g| g.subject == Subject::Agent(id))
                {
                    rights.add_direct(grant);
                }
            }
            Holder::Organisation { id, valid: true } => {
                for group_id in &settings.company_always_groups {
                    rights.add(*group_id, Whose::Organisation, company_always());
                }
                for grant in grants
                    .into_iter()
                    .filter(|g| g.subject == Subject::Organisation(id))
                {
                    rights.add_direct(grant);
                }
            }
            Holder::Customer {
                id,
                valid: true,
                organisations,
            } => rights.add_customer(id, &organisations, grants, settings),
        }
        rights.read = rights.scope_at(Level::Ro);
        rights.write = rights.scope_at(Level::Rw);
        rights.contacts = Scope::agent(rights.readable_directories(&directories));
        rights
    }

    /// The directories an agent reads, of `directories` (`None` when there are none): those
    /// that name it, and those that name a group it reads every ticket of. An invalid agent
    /// reads none.
    fn readable_directories(&self, directories: &[Directory]) -> Option<Vec<Uuid>> {
        if directories.is_empty() {
            return None;
        }
        let id = match self.holder {
            Holder::Agent { id, valid: true } => id,
            Holder::Agent { valid: false, .. } => return Some(Vec::new()),
            _ => return None,
        };
        let groups = self.groups(Whose::All, Level::Ro);
        Some(
            directories
                .iter()
                .filter(|directory| {
                    directory.reader_agent_ids.contains(&id)
                        || directory
                            .reader_group_ids
                            .iter()
                            .any(|group| groups.contains(group))
                })
                .map(|directory| directory.id)
                .collect(),
        )
    }

    /// The contacts (customers and organisations) an agent reads; everything for the other
    /// holders, whose reach the caller's role decides. A clone costs a reference count.
    pub fn contacts(&self) -> Scope {
        self.contacts.clone()
    }

    /// May the agent read (or, with `manage_customers`, write) a contact filed in
    /// `directory_id` (or in none), and why.
    pub fn explain_contact(
        &self,
        directory_id: Option<Uuid>,
        wanted: Level,
        manage_customers: bool,
    ) -> Decision {
        // Whether the directory it is filed in is read (None: filed nowhere, or no
        // directory exists).
        let filed = directory_id
            .filter(|_| self.contacts.hides_filed())
            .map(|id| self.contacts.admits_filed(Some(id)));
        match (filed, wanted) {
            (Some(false), _) => Decision::rule(false, Reason::Directory),
            (_, Level::Rw) if manage_customers => Decision::rule(true, Reason::ManageCustomers),
            (_, Level::Rw) => Decision::rule(false, Reason::NoManageCustomers),
            (Some(true), Level::Ro) => Decision::rule(true, Reason::DirectoryReader),
            (None, Level::Ro) => Decision::rule(true, Reason::AgentReadsMasterData),
        }
    }

    /// The bases of an agent's or organisation's own grant.
    fn add_direct(&mut self, grant: Grant) {
        let whose = match grant.context {
            GrantContext::SameOrganisation => Whose::Organisation,
            GrantContext::OtherOrganisations | GrantContext::None => Whose::All,
        };
        self.add(
            grant.group_id,
            whose,
            Basis::granted(Reason::OwnGrant, grant),
        );
    }

    /// The bases of a valid customer (DESIGN §2, paths a, b and c).
    fn add_customer(
        &mut self,
        me: Uuid,
        organisations: &[Uuid],
        grants: Vec<Grant>,
        settings: &Settings,
    ) {
        for grant in grants {
            match (grant.subject, grant.context) {
                (Subject::Customer(id), _) if id == me => {
                    self.add(
                        grant.group_id,
                        Whose::Own,
                        Basis::granted(Reason::OwnGrant, grant),
                    );
                }
                (Subject::Organisation(organisation), context)
                    if organisations.contains(&organisation) =>
                {
                    let group_id = grant.group_id;
                    let basis = Basis::granted(Reason::OrganisationGrant, grant);
                    self.add(group_id, Whose::Own, basis.clone());
                    match context {
                        GrantContext::OtherOrganisations => self.add(group_id, Whose::All, basis),
                        GrantContext::SameOrganisation | GrantContext::None => {
                            self.add_for_organisation(group_id, organisation, basis);
                        }
                    }
                }
                // Not this customer's, nor one of its valid organisations'.
                _ => {}
            }
        }
        for group_id in &settings.always_groups {
            self.add(
                *group_id,
                Whose::Own,
                Basis::rule(Level::Rw, Reason::AlwaysGroups),
            );
        }
        for group_id in &settings.company_always_groups {
            if !organisations.is_empty() {
                self.add(*group_id, Whose::Own, company_always());
            }
            for organisation in organisations {
                self.add_for_organisation(*group_id, *organisation, company_always());
            }
        }
        if !settings.customer_group_support {
            for group_id in self.valid_groups.clone().iter() {
                self.add(
                    *group_id,
                    Whose::Own,
                    Basis::rule(Level::Rw, Reason::CustomerGroupSupportOff),
                );
            }
        }
    }

    fn add(&mut self, group_id: Uuid, whose: Whose, basis: Basis) {
        self.bases.entry((group_id, whose)).or_default().push(basis);
    }

    /// Adds a basis on the tickets of `organisation` in `group_id`.
    fn add_for_organisation(&mut self, group_id: Uuid, organisation: Uuid, basis: Basis) {
        self.organisation_bases
            .entry((group_id, organisation))
            .or_default()
            .push(basis.clone());
        self.add(group_id, Whose::Organisation, basis);
    }

    /// Whether the holder is valid (admins always are).
    fn valid(&self) -> bool {
        match &self.holder {
            Holder::Admin => true,
            Holder::Agent { valid, .. }
            | Holder::Organisation { valid, .. }
            | Holder::Customer { valid, .. } => *valid,
        }
    }

    /// The contacts an administrator reads: all of them.
    pub(crate) fn admin_contacts() -> Scope {
        Scope::everything()
    }

    /// The tickets an administrator reaches, at either level: all of them.
    pub(crate) fn admin_scope() -> TicketScope {
        TicketScope::everything()
    }

    /// The tickets the holder may read (`Level::Ro`) or work on (`Level::Rw`).
    pub fn scope(&self, level: Level) -> &TicketScope {
        match level {
            Level::Ro => &self.read,
            Level::Rw => &self.write,
        }
    }

    /// The paths to tickets at `level`: every path a basis opens on a valid group.
    fn scope_at(&self, level: Level) -> TicketScope {
        let mut paths = TicketPaths::default();
        // An invalid holder has no bases (see [`Rights::compile`]), so no path either.
        match &self.holder {
            Holder::Admin => return TicketScope::everything(),
            Holder::Agent { .. } | Holder::Organisation { .. } => {
                paths.all_groups = self.groups(Whose::All, level);
                paths.reader_groups = self.groups(Whose::All, Level::Ro);
            }
            Holder::Customer { id, .. } => {
                paths.all_groups = self.groups(Whose::All, level);
                paths.reader_groups = self.groups(Whose::All, Level::Ro);
                paths.own_groups = self.groups(Whose::Own, level);
                let mut by_organisation: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
                for ((group, organisation), bases) in &self.organisation_bases {
                    if self.valid_groups.contains(group) && reaches(bases, level) {
                        by_organisation
                            .entry(*organisation)
                            .or_default()
                            .push(*group);
                    }
                }
                paths.organisation_groups = by_organisation.into_iter().collect();
                paths.customer = Some(*id);
            }
        }
        TicketScope::paths(paths)
    }

    /// The valid groups on which `whose` tickets are reached at `wanted` or better.
    fn groups(&self, whose: Whose, wanted: Level) -> Vec<Uuid> {
        self.bases
            .iter()
            .filter(|((group, w), bases)| {
                *w == whose && self.valid_groups.contains(group) && reaches(bases, wanted)
            })
            .map(|((group, _), _)| *group)
            .collect()
    }

    /// The clearest basis that gives `wanted` on `whose` tickets of `group_id`.
    fn decide(&self, group_id: Uuid, whose: Whose, wanted: Level) -> Option<&Basis> {
        best(self.bases.get(&(group_id, whose))?, wanted)
    }

    /// Why the holder may, or may not, have `wanted` on the tickets of `group_id`: every
    /// ticket for staff, its own for a customer.
    pub fn explain_group(&self, group_id: Uuid, wanted: Level) -> Decision {
        if let Some(decision) = self.refusal_before_grants(group_id) {
            return decision;
        }
        let whose = match self.holder {
            Holder::Customer { .. } => Whose::Own,
            _ => Whose::All,
        };
        self.decide(group_id, whose, wanted)
            .map_or(Decision::rule(false, Reason::NoGrant), |basis| {
                Decision::by(None, basis)
            })
    }

    /// Why the holder may, or may not, have `wanted` on a ticket of `group_id` and
    /// `organisation_id`, limited to the readers of `reader_group` if any, whose customers are
    /// `customers`, and by which path: the same answer as [`TicketScope::admits`] on
    /// [`Rights::scope`], with its cause.
    pub fn explain_ticket(
        &self,
        group_id: Uuid,
        organisation_id: Option<Uuid>,
        reader_group: Option<Uuid>,
        mut customers: impl Iterator<Item = Uuid>,
        wanted: Level,
    ) -> Decision {
        if let Some(decision) = self.refusal_before_grants(group_id) {
            return decision;
        }
        let found = match &self.holder {
            Holder::Customer {
                id, organisations, ..
            } => {
                let own = customers
                    .any(|c| c == *id)
                    .then(|| self.decide(group_id, Whose::Own, wanted))
                    .flatten()
                    .map(|basis| (Whose::Own, basis));
                // Only the ticket's own organisation's bases reach it on this path.
                let organisation = || {
                    organisation_id
                        .filter(|org| organisations.contains(org))
                        .and_then(|org| {
                            best(self.organisation_bases.get(&(group_id, org))?, wanted)
                        })
                        .map(|basis| (Whose::Organisation, basis))
                };
                own.or_else(organisation)
            }
            _ => None,
        };
        // Every ticket of the group: only for the readers of its reader group, if it has one.
        let reads_reader_group = reader_group.is_none_or(|reader| {
            self.valid_groups.contains(&reader)
                && self.decide(reader, Whose::All, Level::Ro).is_some()
        });
        let all = self
            .decide(group_id, Whose::All, wanted)
            .map(|basis| (Whose::All, basis));
        match found {
            Some((whose, basis)) => Decision::by(Some(whose), basis),
            None => match all {
                Some((whose, basis)) if reads_reader_group => Decision::by(Some(whose), basis),
                Some(_) => Decision::rule(false, Reason::ReaderGroup),
                None => Decision::rule(false, Reason::NoGrant),
            },
        }
    }

    /// What decides before any grant is looked at: an admin may, an invalid holder may not,
    /// and no one may use an invalid group.
    fn refusal_before_grants(&self, group_id: Uuid) -> Option<Decision> {
        if self.holder == Holder::Admin {
            Some(Decision::rule(true, Reason::Admin))
        } else if !self.valid() {
            Some(Decision::rule(false, Reason::PrincipalInvalid))
        } else if !self.valid_groups.contains(&group_id) {
            Some(Decision::rule(false, Reason::GroupInvalid))
        } else {
            None
        }
    }

    /// The best level per valid group and scope, ordered by group then scope.
    pub fn effective(&self) -> Vec<Effective> {
        let mut all: Vec<Effective> = self
            .bases
            .iter()
            .filter(|((group_id, _), _)| self.valid_groups.contains(group_id))
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

/// Whether any of `bases` gives `wanted` or better.
fn reaches(bases: &[Basis], wanted: Level) -> bool {
    bases.iter().any(|basis| basis.level.covers(wanted))
}

/// The clearest of `bases` that gives `wanted`.
fn best(bases: &[Basis], wanted: Level) -> Option<&Basis> {
    bases
        .iter()
        .filter(|basis| basis.level.covers(wanted))
        .min_by_key(|basis| basis.priority())
}

fn company_always() -> Basis {
    Basis::rule(Level::Rw, Reason::CompanyAlwaysGroups)
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, Value};

    use super::*;
    use crate::testing::Lcg;

    /// A small world of groups, organisations, customers, grants, settings and tickets.
    struct World {
        valid_groups: Arc<HashSet<Uuid>>,
        organisations: Vec<Uuid>,
        valid_organisations: Vec<Uuid>,
        agent: Uuid,
        me: Uuid,
        grants: Vec<Grant>,
        settings: Settings,
        tickets: Vec<Facts>,
    }

    #[derive(Clone, Debug)]
    struct Facts {
        id: Uuid,
        group_id: Uuid,
        organisation_id: Option<Uuid>,
        customer_id: Uuid,
        additional: Vec<Uuid>,
        reader_group: Option<Uuid>,
    }

    impl Facts {
        fn customers(&self) -> impl Iterator<Item = Uuid> + '_ {
            std::iter::once(self.customer_id).chain(self.additional.iter().copied())
        }
    }

    fn pick<T: Copy>(rng: &mut Lcg, items: &[T]) -> T {
        items[rng.next(items.len() as u64) as usize]
    }

    fn subset(rng: &mut Lcg, items: &[Uuid]) -> Vec<Uuid> {
        items.iter().copied().filter(|_| rng.chance(3)).collect()
    }

    fn random_world(rng: &mut Lcg) -> World {
        let groups: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        let valid_groups = groups.iter().copied().filter(|_| !rng.chance(4)).collect();
        let organisations: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let valid_organisations = organisations
            .iter()
            .copied()
            .filter(|_| !rng.chance(4))
            .collect();
        let (agent, me, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let subjects: Vec<Subject> = [Subject::Agent(agent), Subject::Customer(me)]
            .into_iter()
            .chain([Subject::Customer(other)])
            .chain(organisations.iter().map(|id| Subject::Organisation(*id)))
            .collect();
        let grants = (0..rng.next(9))
            .map(|_| {
                let subject = pick(rng, &subjects);
                let context = match subject {
                    Subject::Organisation(_) => pick(
                        rng,
                        &[
                            GrantContext::SameOrganisation,
                            GrantContext::OtherOrganisations,
                        ],
                    ),
                    _ => GrantContext::None,
                };
                let group_id = pick(rng, &groups);
                grant(
                    subject,
                    group_id,
                    context,
                    pick(rng, &[Level::Ro, Level::Rw]),
                )
            })
            .collect();
        let support = !rng.chance(4);
        let always = subset(rng, &groups);
        let settings = settings(support, always, subset(rng, &groups));
        // Every kind of ticket: each group, each organisation or none, and as its customer
        // me, someone else, or someone else with me as an additional customer.
        let mut tickets = Vec::new();
        for group_id in &groups {
            for organisation_id in std::iter::once(None).chain(organisations.iter().map(Some)) {
                for (customer_id, additional) in [(me, vec![]), (other, vec![]), (other, vec![me])]
                {
                    // Some limited to the readers of a group.
                    let reader_group = rng.chance(3).then(|| pick(rng, &groups));
                    tickets.push(Facts {
                        id: Uuid::now_v7(),
                        group_id: *group_id,
                        organisation_id: organisation_id.copied(),
                        customer_id,
                        additional,
                        reader_group,
                    });
                }
            }
        }
        World {
            valid_groups: Arc::new(valid_groups),
            organisations,
            valid_organisations,
            agent,
            me,
            grants,
            settings,
            tickets,
        }
    }

    impl World {
        /// The holders whose rights are compiled: the agent and "me", valid or not, "me" a
        /// member of some of the organisations.
        fn holder(&self, rng: &mut Lcg) -> Holder {
            let valid = !rng.chance(6);
            if rng.chance(3) {
                return Holder::Agent {
                    id: self.agent,
                    valid,
                };
            }
            let organisations = subset(rng, &self.organisations)
                .into_iter()
                .filter(|id| self.valid_organisations.contains(id))
                .collect();
            Holder::Customer {
                id: self.me,
                valid,
                organisations,
            }
        }

        fn rights(&self, holder: &Holder) -> Rights {
            Rights::compile(Sources {
                holder: holder.clone(),
                grants: self.grants.clone(),
                settings: &self.settings,
                valid_groups: self.valid_groups.clone(),
                directories: Arc::default(),
            })
        }

        /// DESIGN §2 read as plainly as it is written, grant by grant: the oracle.
        fn may(&self, holder: &Holder, ticket: &Facts, wanted: Level) -> bool {
            let granted_on =
                |subject: Subject, context: Option<GrantContext>, group: Uuid, level: Level| {
                    self.grants.iter().any(|grant| {
                        grant.subject == subject
                            && grant.group_id == group
                            && context.is_none_or(|context| grant.context == context)
                            && grant.level.covers(level)
                    })
                };
            let granted = |subject: Subject, context: Option<GrantContext>| {
                granted_on(subject, context, ticket.group_id, wanted)
            };
            // A ticket with a reader group reaches those who read every ticket of its group
            // only if they also read every ticket of the reader group.
            let reads_reader_group = |subject: &dyn Fn(Uuid) -> bool| {
                ticket
                    .reader_group
                    .is_none_or(|reader| self.valid_groups.contains(&reader) && subject(reader))
            };
            let group = ticket.group_id;
            match holder {
                Holder::Admin => true,
                _ if !self.valid_groups.contains(&group) => false,
                Holder::Agent { id, valid } => {
                    *valid
                        && granted(Subject::Agent(*id), None)
                        && reads_reader_group(&|reader| {
                            granted_on(Subject::Agent(*id), None, reader, Level::Ro)
                        })
                }
                Holder::Organisation { .. } => unreachable!("organisations do not call"),
                Holder::Customer {
                    id,
                    valid,
                    organisations,
                } => {
                    let of_an_organisation = |context| {
                        organisations
                            .iter()
                            .any(|org| granted(Subject::Organisation(*org), context))
                    };
                    let company_always = self.settings.company_always_groups.contains(&group);
                    let own = ticket.customers().any(|c| c == *id)
                        && (granted(Subject::Customer(*id), None)
                            || of_an_organisation(None)
                            || self.settings.always_groups.contains(&group)
                            || (company_always && !organisations.is_empty())
                            || !self.settings.customer_group_support);
                    let of_organisation = ticket.organisation_id.is_some_and(|org| {
                        organisations.contains(&org)
                            && (company_always
                                || granted(
                                    Subject::Organisation(org),
                                    Some(GrantContext::SameOrganisation),
                                ))
                    });
                    let all = of_an_organisation(Some(GrantContext::OtherOrganisations))
                        && reads_reader_group(&|reader| {
                            organisations.iter().any(|org| {
                                granted_on(
                                    Subject::Organisation(*org),
                                    Some(GrantContext::OtherOrganisations),
                                    reader,
                                    Level::Ro,
                                )
                            })
                        });
                    *valid && (own || of_organisation || all)
                }
            }
        }
    }

    fn grant(subject: Subject, group_id: Uuid, context: GrantContext, level: Level) -> Grant {
        Grant {
            id: Uuid::now_v7(),
            subject,
            group_id,
            context,
            level,
            create_time: Timestamp::UNIX_EPOCH,
            update_time: Timestamp::UNIX_EPOCH,
        }
    }

    fn settings(customer_group_support: bool, always: Vec<Uuid>, company: Vec<Uuid>) -> Settings {
        Settings {
            auto_create_organisations: false,
            auto_create_organisation_country: String::new(),
            customer_group_support,
            always_groups: always,
            company_always_groups: company,
            default_group_id: None,
            update_time: Timestamp::UNIX_EPOCH,
            version: 1,
        }
    }

    /// A holder made invalid keeps its grants in the database but none of their effect, and
    /// the explanation says why: the principal, not a missing grant.
    #[test]
    fn an_invalid_holder_is_refused_as_invalid_whatever_it_was_granted() {
        let (agent, me, group) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let grants = vec![
            grant(Subject::Agent(agent), group, GrantContext::None, Level::Rw),
            grant(Subject::Customer(me), group, GrantContext::None, Level::Rw),
        ];
        let settings = settings(true, vec![group], vec![]);
        let rights = |holder: Holder| {
            Rights::compile(Sources {
                holder,
                grants: grants.clone(),
                settings: &settings,
                valid_groups: Arc::new(HashSet::from([group])),
                directories: Arc::default(),
            })
        };
        let holders = [
            Holder::Agent {
                id: agent,
                valid: false,
            },
            Holder::Customer {
                id: me,
                valid: false,
                organisations: vec![],
            },
        ];
        for holder in holders {
            let rights = rights(holder.clone());
            for level in [Level::Ro, Level::Rw] {
                let by_group = rights.explain_group(group, level);
                assert!(!by_group.allowed, "{holder:?}");
                assert_eq!(by_group.reason, Reason::PrincipalInvalid, "{holder:?}");
                let by_ticket =
                    rights.explain_ticket(group, None, None, std::iter::once(me), level);
                assert_eq!(by_ticket.reason, Reason::PrincipalInvalid, "{holder:?}");
                assert!(
                    !rights
                        .scope(level)
                        .admits(group, None, None, std::iter::once(me))
                );
            }
            assert!(rights.effective().is_empty(), "{holder:?}");
        }
        // And valid, the same holders may.
        let valid = rights(Holder::Agent {
            id: agent,
            valid: true,
        });
        assert!(valid.explain_group(group, Level::Rw).allowed);
    }

    /// For a customer, a group is a question about its own tickets there: its own grant or an
    /// always-group opens them (and is named), nothing else does.
    #[test]
    fn a_customers_group_is_explained_by_what_opens_its_own_tickets() {
        let (me, organisation) = (Uuid::now_v7(), Uuid::now_v7());
        let [own, always, nothing] = std::array::from_fn(|_| Uuid::now_v7());
        let grants = vec![grant(
            Subject::Customer(me),
            own,
            GrantContext::None,
            Level::Ro,
        )];
        let settings = settings(true, vec![always], vec![]);
        let rights = Rights::compile(Sources {
            holder: Holder::Customer {
                id: me,
                valid: true,
                organisations: vec![organisation],
            },
            grants,
            settings: &settings,
            valid_groups: Arc::new(HashSet::from([own, always, nothing])),
            directories: Arc::default(),
        });
        let own_ro = rights.explain_group(own, Level::Ro);
        assert!(own_ro.allowed);
        assert_eq!(own_ro.reason, Reason::OwnGrant);
        assert!(!rights.explain_group(own, Level::Rw).allowed);
        let by_always = rights.explain_group(always, Level::Rw);
        assert!(by_always.allowed);
        assert_eq!(by_always.reason, Reason::AlwaysGroups);
        let refused = rights.explain_group(nothing, Level::Ro);
        assert!(!refused.allowed);
        assert_eq!(refused.reason, Reason::NoGrant);
    }

    /// When several things give a customer its own ticket, the explanation names the clearest:
    /// its own grant, then its organisation's, then the always-groups, then the
    /// company-always-groups, then customer_group_support being off.
    #[test]
    fn the_clearest_of_several_causes_is_named() {
        let (me, organisation, group) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let own = grant(Subject::Customer(me), group, GrantContext::None, Level::Rw);
        let of_organisation = grant(
            Subject::Organisation(organisation),
            group,
            GrantContext::SameOrganisation,
            Level::Rw,
        );
        let valid_groups = Arc::new(HashSet::from([group]));
        let explain = |grants: Vec<Grant>, settings: &Settings| {
            Rights::compile(Sources {
                holder: Holder::Customer {
                    id: me,
                    valid: true,
                    organisations: vec![organisation],
                },
                grants,
                settings,
                valid_groups: valid_groups.clone(),
                directories: Arc::default(),
            })
            .explain_ticket(group, None, None, std::iter::once(me), Level::Rw)
            .reason
        };
        let everything = settings(false, vec![group], vec![group]);
        let both = vec![of_organisation.clone(), own];
        assert_eq!(explain(both.clone(), &everything), Reason::OwnGrant);
        assert_eq!(
            explain(both.into_iter().rev().collect(), &everything),
            Reason::OwnGrant,
            "whatever the order of the grants"
        );
        assert_eq!(
            explain(vec![of_organisation], &everything),
            Reason::OrganisationGrant
        );
        assert_eq!(explain(vec![], &everything), Reason::AlwaysGroups);
        assert_eq!(
            explain(vec![], &settings(false, vec![], vec![group])),
            Reason::CompanyAlwaysGroups
        );
        assert_eq!(
            explain(vec![], &settings(false, vec![], vec![])),
            Reason::CustomerGroupSupportOff
        );
        assert_eq!(
            explain(vec![], &settings(true, vec![], vec![])),
            Reason::NoGrant
        );
        // The effective rights name the clearest cause too (ties there go the other way).
        let effective = Rights::compile(Sources {
            holder: Holder::Customer {
                id: me,
                valid: true,
                organisations: vec![organisation],
            },
            grants: vec![],
            settings: &settings(false, vec![], vec![group]),
            valid_groups: valid_groups.clone(),
            directories: Arc::default(),
        })
        .effective();
        let own = effective
            .iter()
            .find(|e| e.scope == Whose::Own)
            .map(|e| e.basis.reason);
        assert_eq!(own, Some(Reason::CompanyAlwaysGroups));
    }

    /// An organisation's rights are its own grants and the company-always-groups, on valid
    /// groups, and nothing when it is invalid.
    #[test]
    fn an_organisation_has_its_own_grants_and_the_company_always_groups() {
        let (organisation, other) = (Uuid::now_v7(), Uuid::now_v7());
        let [granted, company, invalid, others] = std::array::from_fn(|_| Uuid::now_v7());
        let grants = vec![
            grant(
                Subject::Organisation(organisation),
                granted,
                GrantContext::OtherOrganisations,
                Level::Ro,
            ),
            grant(
                Subject::Organisation(organisation),
                invalid,
                GrantContext::SameOrganisation,
                Level::Rw,
            ),
            grant(
                Subject::Organisation(other),
                others,
                GrantContext::SameOrganisation,
                Level::Rw,
            ),
        ];
        let settings = settings(true, vec![], vec![company]);
        let effective = |valid: bool| {
            Rights::compile(Sources {
                holder: Holder::Organisation {
                    id: organisation,
                    valid,
                },
                grants: grants.clone(),
                settings: &settings,
                valid_groups: Arc::new(HashSet::from([granted, company, others])),
                directories: Arc::default(),
            })
            .effective()
            .into_iter()
            .map(|e| (e.group_id, e.scope, e.basis.reason))
            .collect::<HashSet<_>>()
        };
        assert_eq!(
            effective(true),
            HashSet::from([
                (granted, Whose::All, Reason::OwnGrant),
                (company, Whose::Organisation, Reason::CompanyAlwaysGroups),
            ])
        );
        assert!(effective(false).is_empty());
    }

    async fn ticket_table(world: &World) -> sea_orm::DatabaseConnection {
        let db = Database::connect("sqlite::memory:")
            .await
            .expect("database");
        for table in [
            "CREATE TABLE tickets (id BLOB PRIMARY KEY, group_id BLOB NOT NULL, \
             customer_id BLOB NOT NULL, organisation_id BLOB, reader_group_id BLOB)",
            "CREATE TABLE ticket_customers (ticket_id BLOB NOT NULL, customer_id BLOB NOT NULL)",
        ] {
            db.execute_unprepared(table).await.expect("table");
        }
        for ticket in &world.tickets {
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "INSERT INTO tickets (id, group_id, customer_id, organisation_id, \
                 reader_group_id) VALUES (?, ?, ?, ?, ?)",
                [
                    Value::from(ticket.id),
                    Value::from(ticket.group_id),
                    Value::from(ticket.customer_id),
                    Value::from(ticket.organisation_id),
                    Value::from(ticket.reader_group),
                ],
            ))
            .await
            .expect("ticket");
            for customer in &ticket.additional {
                db.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    "INSERT INTO ticket_customers (ticket_id, customer_id) VALUES (?, ?)",
                    [Value::from(ticket.id), Value::from(*customer)],
                ))
                .await
                .expect("additional customer");
            }
        }
        db
    }

    /// For random grants, settings and validity: the SQL condition, the in-memory check and
    /// the explanation of `CheckPermission` give the same answer on every kind of ticket, and
    /// it is the answer DESIGN §2 gives.
    #[tokio::test]
    async fn the_query_the_check_and_the_explanation_agree_with_the_rules() {
        let mut rng = Lcg(0x5eed_f0a1_1700);
        for round in 0..300 {
            let world = random_world(&mut rng);
            let db = ticket_table(&world).await;
            for _ in 0..4 {
                let holder = world.holder(&mut rng);
                let rights = world.rights(&holder);
                for wanted in [Level::Ro, Level::Rw] {
                    let scope = rights.scope(wanted);
                    let selected: HashSet<Uuid> = scope
                        .ids_query()
                        .into_tuple::<Uuid>()
                        .all(&db)
                        .await
                        .expect("query")
                        .into_iter()
                        .collect();
                    for ticket in &world.tickets {
                        let expected = world.may(&holder, ticket, wanted);
                        let decision = rights.explain_ticket(
                            ticket.group_id,
                            ticket.organisation_id,
                            ticket.reader_group,
                            ticket.customers(),
                            wanted,
                        );
                        let admitted = scope.admits(
                            ticket.group_id,
                            ticket.organisation_id,
                            ticket.reader_group,
                            ticket.customers(),
                        );
                        let context = || {
                            format!(
                                "round {round}, {holder:?} wants {wanted:?} on {ticket:?}\n\
                                 grants {:#?}\nsettings {:?}\nvalid groups {:?}\n{decision:?}",
                                world.grants, world.settings, world.valid_groups
                            )
                        };
                        assert_eq!(decision.allowed, expected, "explanation: {}", context());
                        assert_eq!(admitted, expected, "in-memory check: {}", context());
                        assert_eq!(
                            selected.contains(&ticket.id),
                            expected,
                            "SQL condition: {}",
                            context()
                        );
                        if let Some(grant) = &decision.grant {
                            assert!(
                                grant.group_id == ticket.group_id && grant.level.covers(wanted),
                                "the grant named does not give it: {}",
                                context()
                            );
                        }
                    }
                }
            }
        }
    }

    /// An agent reads a directory's contacts as one of its reader agents, or through a reader
    /// group it reads every ticket of (a valid group, at RO or RW); the contact scope and the
    /// explanation say the same for every directory, and with no directory at all nothing
    /// is hidden.
    #[test]
    fn an_agent_reads_the_directories_that_name_it_or_a_group_it_reads() {
        let me = Uuid::now_v7();
        let (read, work, invalid, foreign) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let directory = |agents: Vec<Uuid>, groups: Vec<Uuid>| Directory {
            id: Uuid::now_v7(),
            name: String::new(),
            comment: String::new(),
            reader_agent_ids: agents,
            reader_group_ids: groups,
            create_time: Timestamp::UNIX_EPOCH,
            update_time: Timestamp::UNIX_EPOCH,
            version: 1,
        };
        let directories = vec![
            (directory(vec![me], vec![]), true),
            (directory(vec![], vec![read]), true),
            (directory(vec![], vec![work, foreign]), true),
            (directory(vec![], vec![invalid]), false),
            (directory(vec![Uuid::now_v7()], vec![foreign]), false),
            (directory(vec![], vec![]), false),
        ];
        let settings = settings(true, vec![], vec![]);
        let grants = vec![
            grant(Subject::Agent(me), read, GrantContext::None, Level::Ro),
            grant(Subject::Agent(me), work, GrantContext::None, Level::Rw),
            grant(Subject::Agent(me), invalid, GrantContext::None, Level::Rw),
        ];
        let compile = |directories: Vec<Directory>, valid: bool| {
            Rights::compile(Sources {
                holder: Holder::Agent { id: me, valid },
                grants: grants.clone(),
                settings: &settings,
                valid_groups: Arc::new(HashSet::from([read, work, foreign])),
                directories: Arc::new(directories),
            })
        };
        let rights = compile(directories.iter().map(|(d, _)| d.clone()).collect(), true);
        let contacts = rights.contacts();
        assert!(contacts.hides_filed());
        for (directory, readable) in &directories {
            let explained = rights.explain_contact(Some(directory.id), Level::Ro, false);
            assert_eq!(
                (contacts.admits_filed(Some(directory.id)), explained.allowed),
                (*readable, *readable),
                "{directory:?}"
            );
            let expected = if *readable {
                Reason::DirectoryReader
            } else {
                Reason::Directory
            };
            assert_eq!(explained.reason, expected);
        }
        assert!(
            contacts.admits_filed(None),
            "a contact filed nowhere is everyone's"
        );
        assert_eq!(
            rights.explain_contact(None, Level::Ro, false).reason,
            Reason::AgentReadsMasterData
        );
        let unused = compile(Vec::new(), true).contacts();
        assert!(!unused.hides_filed() && unused.admits_filed(Some(Uuid::now_v7())));
        let invalid_agent =
            compile(directories.iter().map(|(d, _)| d.clone()).collect(), false).contacts();
        assert!(!invalid_agent.admits_filed(Some(directories[0].0.id)));
    }
}
