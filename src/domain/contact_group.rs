//! Contact groups (AyMINE): contacts classified by criteria — a catalogue of kinds
//! (colleagues, customers, suppliers, partners, …) — with the price lists that apply to their
//! members. A customer is in the groups it joined and in those of its organisations. Being in
//! a contact group grants nothing: rights come from groups and grants, visibility of contacts
//! from directories.

use std::{collections::HashSet, sync::Arc};

use serde_json::json;
use uuid::Uuid;

use super::{
    changes::{self, Audit, check_etag},
    fields::{self, Violations},
    paging::{self, Page},
    rights::{Administrator, MasterDataWriter, StaffReader},
};
use crate::{
    clock::Clock,
    error::{Error, PreconditionViolation, Result},
    model::{
        Actor, ChangeEvent, ChangeKind, Contact, ContactGroup, ContactGroupKind,
        ContactGroupMember, ContactGroupMembership, FieldChange, PriceListAssignment, ResourceType,
        Responsibility, Severity, SlaContract, Validity,
    },
    store::{
        Cursor, Scope, Store, contact_group_cursor, contact_group_kind_cursor,
        contact_group_member_cursor,
    },
};

/// The most price lists one contact group applies.
pub const MAX_PRICE_LISTS: usize = 50;
/// The most responsibilities one contact group has.
pub const MAX_RESPONSIBILITIES: usize = 100;
/// The most contacts one call adds or removes.
pub const MAX_MEMBERS_PER_CALL: usize = 100;

/// The values a client sends for a kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindInput {
    /// Name.
    pub name: String,
    /// Free text.
    pub comment: String,
    /// Validity; `None` means valid.
    pub validity: Option<Validity>,
}

/// The fields an update of a kind may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindField {
    /// `name`
    Name,
    /// `comment`
    Comment,
    /// `validity`
    Validity,
}

impl KindField {
    /// Every updatable field.
    pub const ALL: [Self; 3] = [Self::Name, Self::Comment, Self::Validity];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Comment => "comment",
            Self::Validity => "validity",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, fields::output_only)
    }
}

/// The values a client sends for a contact group.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContactGroupInput {
    /// Name.
    pub name: String,
    /// Its kind.
    pub kind_id: Option<Uuid>,
    /// Free text.
    pub comment: String,
    /// Validity; `None` means valid.
    pub validity: Option<Validity>,
    /// Its price lists.
    pub price_lists: Vec<PriceListAssignment>,
    /// Its SLA contract's default level.
    pub sla_default_policy: Option<Uuid>,
    /// Its SLA contract's levels as sent (an unspecified severity is `None`).
    pub sla_levels: Vec<(Option<Severity>, Uuid)>,
    /// Who is responsible per area.
    pub responsibilities: Vec<Responsibility>,
}

/// The fields an update of a contact group may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactGroupField {
    /// `name`
    Name,
    /// `kind_id`
    KindId,
    /// `comment`
    Comment,
    /// `validity`
    Validity,
    /// `price_list_assignments`
    PriceLists,
    /// `sla_contract`
    SlaContract,
    /// `responsibilities`
    Responsibilities,
}

impl ContactGroupField {
    /// Every updatable field.
    pub const ALL: [Self; 7] = [
        Self::Name,
        Self::KindId,
        Self::Comment,
        Self::Validity,
        Self::PriceLists,
        Self::SlaContract,
        Self::Responsibilities,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::KindId => "kind_id",
            Self::Comment => "comment",
            Self::Validity => "validity",
            Self::PriceLists => "price_list_assignments",
            Self::SlaContract => "sla_contract",
            Self::Responsibilities => "responsibilities",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, fields::output_only)
    }
}

/// Which contact group to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactGroupKey {
    /// By id.
    Id(Uuid),
    /// By name, case-insensitively.
    Name(String),
}

/// The contact group rules, over the store.
#[derive(Clone, Debug)]
pub struct ContactGroups {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl ContactGroups {
    /// The rules over `store`, reading time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Adds a kind to the catalogue.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn create_kind(
        &self,
        admin: &Administrator,
        input: &KindInput,
        request_id: Option<String>,
    ) -> Result<ContactGroupKind> {
        let now = self.clock.now();
        let mut kind = ContactGroupKind {
            id: Uuid::now_v7(),
            name: String::new(),
            comment: String::new(),
            validity: Validity::Valid,
            create_time: now,
            update_time: now,
            version: 1,
        };
        let mut violations = Violations::default();
        for field in KindField::ALL {
            apply_kind(&mut violations, &mut kind, field, input);
        }
        violations.finish()?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::ContactGroupKind,
            kind.id,
            ChangeKind::Created,
            changes::diff(None, &kind_audit(&kind)),
        );
        let key =
            fields::idempotency_key("CreateContactGroupKind", admin.actor(), request_id, input);
        let inserted = self
            .store
            .insert_contact_group_kind(&kind, &event, key.as_ref())
            .await?;
        fields::created(inserted, key.as_ref(), async |id| self.kind(id).await).await
    }

    async fn kind(&self, id: Uuid) -> Result<ContactGroupKind> {
        self.store
            .contact_group_kind(id)
            .await?
            .ok_or(Error::NotFound {
                resource: "contact group kind",
            })
    }

    /// Changes `fields` of kind `id`, if `etag` is current.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn update_kind(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[KindField],
        input: &KindInput,
    ) -> Result<ContactGroupKind> {
        let current = self.kind(id).await?;
        check_etag("contact group kind", &current.etag(), etag)?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply_kind(&mut violations, &mut next, *field, input);
        }
        violations.finish()?;
        let changes = changes::diff(Some(&kind_audit(&current)), &kind_audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            admin.actor(),
            next.update_time,
            ResourceType::ContactGroupKind,
            id,
            ChangeKind::Updated,
            changes,
        );
        self.store
            .update_contact_group_kind(&next, current.version, &event)
            .await
    }

    /// One page of the catalogue.
    pub async fn list_kinds(
        &self,
        _reader: &StaffReader,
        include_invalid: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<ContactGroupKind>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("contact_group_kinds", include_invalid));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_contact_group_kinds(include_invalid, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(
            items,
            limit,
            &fingerprint,
            contact_group_kind_cursor,
        ))
    }

    /// Creates a contact group.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn create(
        &self,
        admin: &Administrator,
        input: &ContactGroupInput,
        request_id: Option<String>,
    ) -> Result<ContactGroup> {
        let now = self.clock.now();
        let mut group = ContactGroup {
            id: Uuid::now_v7(),
            name: String::new(),
            kind_id: Uuid::nil(),
            comment: String::new(),
            validity: Validity::Valid,
            price_lists: Vec::new(),
            sla: SlaContract::default(),
            responsibilities: Vec::new(),
            create_time: now,
            update_time: now,
            version: 1,
        };
        let mut violations = Violations::default();
        for field in ContactGroupField::ALL {
            apply(&mut violations, &mut group, field, input);
        }
        violations.finish()?;
        self.check_references(&group, None).await?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::ContactGroup,
            group.id,
            ChangeKind::Created,
            changes::diff(None, &audit(&group)),
        );
        let key = fields::idempotency_key("CreateContactGroup", admin.actor(), request_id, input);
        let inserted = self
            .store
            .insert_contact_group(&group, &event, key.as_ref())
            .await?;
        fields::created(inserted, key.as_ref(), async |id| {
            self.get(&admin.reader(), &ContactGroupKey::Id(id)).await
        })
        .await
    }

    /// Reads one contact group.
    pub async fn get(&self, _reader: &StaffReader, key: &ContactGroupKey) -> Result<ContactGroup> {
        let found = match key {
            ContactGroupKey::Id(id) => self.store.contact_group(*id).await?,
            ContactGroupKey::Name(name) => self.store.contact_group_by_name(name).await?,
        };
        found.ok_or(Error::NotFound {
            resource: "contact group",
        })
    }

    /// Changes `fields` of contact group `id`, if `etag` is current.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn update(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[ContactGroupField],
        input: &ContactGroupInput,
    ) -> Result<ContactGroup> {
        let current = self.get(&admin.reader(), &ContactGroupKey::Id(id)).await?;
        check_etag("contact group", &current.etag(), etag)?;
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
            ResourceType::ContactGroup,
            id,
            ChangeKind::Updated,
            changes,
        );
        self.store
            .update_contact_group(&next, current.version, &event)
            .await
    }

    /// One page of contact groups, of `kind` if given.
    pub async fn list(
        &self,
        _reader: &StaffReader,
        include_invalid: bool,
        kind: Option<Uuid>,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<ContactGroup>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("contact_groups", include_invalid, kind));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_contact_groups(include_invalid, kind, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(
            items,
            limit,
            &fingerprint,
            contact_group_cursor,
        ))
    }

    /// Puts `contacts` into contact group `id`; returns how many joined.
    #[tracing::instrument(skip(self, writer), level = "debug", err(level = "debug"))]
    pub async fn add_members(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        contacts: &[Contact],
    ) -> Result<u64> {
        let contacts = self.members_of_request(contacts)?;
        self.check_contacts_exist(writer.contacts(), &contacts)
            .await?;
        let now = self.clock.now();
        let actor = writer.actor().clone();
        self.store
            .add_contact_group_members(id, &contacts, now, &|joined| {
                membership_event(&actor, now, id, ChangeKind::MembersAdded, joined)
            })
            .await
    }

    /// Takes `contacts` out of contact group `id`; returns how many left.
    #[tracing::instrument(skip(self, writer), level = "debug", err(level = "debug"))]
    pub async fn remove_members(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        contacts: &[Contact],
    ) -> Result<u64> {
        let mut contacts = self.members_of_request(contacts)?;
        // One the writer may not read is, to it, no member.
        let hidden = self.hidden(writer.contacts(), &contacts).await?;
        contacts.retain(|contact| !hidden.contains(contact));
        if contacts.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let actor = writer.actor().clone();
        self.store
            .remove_contact_group_members(id, &contacts, &|left| {
                membership_event(&actor, now, id, ChangeKind::MembersRemoved, left)
            })
            .await
    }

    /// One page of the direct members of contact group `id`, in the order they joined.
    pub async fn list_members(
        &self,
        reader: &StaffReader,
        id: Uuid,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<ContactGroupMember>> {
        self.get(reader, &ContactGroupKey::Id(id)).await?;
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("contact_group_members", id));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_contact_group_members(id, cursor.as_ref(), limit + 1)
            .await?;
        let mut page = paging::page(items, limit, &fingerprint, contact_group_member_cursor);
        // Members the reader may not read are left out (the page may hold fewer).
        let contacts: Vec<Contact> = page.items.iter().map(|member| member.contact).collect();
        let hidden = self.hidden(reader.contacts(), &contacts).await?;
        page.items
            .retain(|member| !hidden.contains(&member.contact));
        Ok(page)
    }

    /// Of `contacts`, those `scope` does not reach (none unless directories hide some; one
    /// that does not exist is among them).
    async fn hidden(&self, scope: &Scope, contacts: &[Contact]) -> Result<Vec<Contact>> {
        let (mut customers, mut organisations) = (Vec::new(), Vec::new());
        for contact in contacts {
            match contact {
                Contact::Customer(id) => customers.push(*id),
                Contact::Organisation(id) => organisations.push(*id),
            }
        }
        let hidden = self
            .store
            .hidden_contacts(scope, &customers, &organisations)
            .await?;
        Ok(contacts
            .iter()
            .filter(|contact| match contact {
                Contact::Customer(id) | Contact::Organisation(id) => hidden.contains(id),
            })
            .copied()
            .collect())
    }

    /// The contact groups `contact` is in, by name: a customer's own first, then those of
    /// its organisations (each group once). A contact `scope` does not reach is NOT_FOUND.
    pub async fn memberships(
        &self,
        _reader: &StaffReader,
        scope: &Scope,
        contact: Contact,
        include_invalid: bool,
    ) -> Result<Vec<ContactGroupMembership>> {
        let (mut memberships, _) = self.memberships_in(scope, contact, include_invalid).await?;
        // Memberships through an organisation the caller may not read are left out.
        let through: Vec<Uuid> = memberships
            .iter()
            .filter_map(|membership| membership.via_organisation_id)
            .collect();
        let hidden = self.store.hidden_contacts(scope, &[], &through).await?;
        memberships.retain(|membership| {
            membership
                .via_organisation_id
                .is_none_or(|id| !hidden.contains(&id))
        });
        memberships.sort_by(|a, b| {
            (
                crate::model::fold_case(&a.contact_group.name),
                a.contact_group.id,
            )
                .cmp(&(
                    crate::model::fold_case(&b.contact_group.name),
                    b.contact_group.id,
                ))
        });
        Ok(memberships)
    }

    /// The contact groups `contact` is in (a customer's own first, then its organisations'
    /// in the customer's order), each once, and the customer's id when it is one.
    pub(crate) async fn memberships_in(
        &self,
        scope: &Scope,
        contact: Contact,
        include_invalid: bool,
    ) -> Result<(Vec<ContactGroupMembership>, Option<Uuid>)> {
        let (members, customer) = match contact {
            Contact::Customer(id) => {
                let customer = self
                    .store
                    .customer(scope, id)
                    .await?
                    .ok_or(Error::NotFound {
                        resource: "customer",
                    })?;
                let mut members = vec![id];
                members.extend(customer.organisation_ids());
                (members, Some(id))
            }
            Contact::Organisation(id) => {
                self.store
                    .organisation(scope, id)
                    .await?
                    .ok_or(Error::NotFound {
                        resource: "organisation",
                    })?;
                (vec![id], None)
            }
        };
        let memberships = reached(&self.store, customer, &members, include_invalid).await?;
        Ok((memberships, customer))
    }

    /// The contacts of a request, each once; at least one, at most
    /// [`MAX_MEMBERS_PER_CALL`].
    fn members_of_request(&self, contacts: &[Contact]) -> Result<Vec<Contact>> {
        let mut unique: Vec<Contact> = Vec::with_capacity(contacts.len());
        for contact in contacts {
            if !unique.contains(contact) {
                unique.push(*contact);
            }
        }
        if unique.is_empty() {
            return Err(Error::invalid(
                "customer_ids",
                "name at least one customer or organisation",
            ));
        }
        if unique.len() > MAX_MEMBERS_PER_CALL {
            return Err(Error::invalid(
                "customer_ids",
                format!("at most {MAX_MEMBERS_PER_CALL} customers and organisations per call"),
            ));
        }
        Ok(unique)
    }

    /// Every contact must exist (for a writer that reads `scope`: one it may not read does
    /// not): a missing one is named in the field that held it.
    async fn check_contacts_exist(&self, scope: &Scope, contacts: &[Contact]) -> Result<()> {
        let mut missing = self.store.missing_contacts(contacts).await?;
        for contact in self.hidden(scope, contacts).await? {
            if !missing.contains(&contact) {
                missing.push(contact);
            }
        }
        let mut violations = Violations::default();
        for contact in missing {
            match contact {
                Contact::Customer(id) => {
                    violations.add("customer_ids", format!("no customer has the id {id}"))
                }
                Contact::Organisation(id) => violations.add(
                    "organisation_ids",
                    format!("no organisation has the id {id}"),
                ),
            }
        }
        violations.finish()
    }

    /// A newly named kind must be valid; every price list named must exist.
    async fn check_references(
        &self,
        next: &ContactGroup,
        current: Option<&ContactGroup>,
    ) -> Result<()> {
        if current.is_none_or(|current| current.kind_id != next.kind_id) {
            match self.store.contact_group_kind(next.kind_id).await? {
                None => {
                    return Err(Error::invalid(
                        "kind_id",
                        format!("no contact group kind has the id {}", next.kind_id),
                    ));
                }
                Some(kind) if !kind.validity.is_valid() => {
                    return Err(Error::FailedPrecondition {
                        reason: "KIND_INVALID",
                        message: format!("the contact group kind {} is invalid", kind.name),
                        violations: vec![PreconditionViolation {
                            kind: "KIND_INVALID".into(),
                            subject: kind.id.to_string(),
                            description: "an invalid kind takes no new contact groups".into(),
                        }],
                    });
                }
                Some(_) => {}
            }
        }
        // Policies newly named by the contract must exist.
        let before = current.map(|c| &c.sla);
        let mut policies: Vec<(String, Uuid)> = Vec::new();
        if let Some(policy) = next.sla.default_policy {
            policies.push(("sla_contract.default_sla_policy_id".into(), policy));
        }
        for (index, (_, policy)) in next.sla.levels.iter().enumerate() {
            policies.push((
                format!("sla_contract.levels[{index}].sla_policy_id"),
                *policy,
            ));
        }
        for (field, policy) in policies {
            let known = before.is_some_and(|sla| {
                sla.default_policy == Some(policy) || sla.levels.iter().any(|(_, p)| *p == policy)
            });
            if !known {
                super::references::sla_policy(&self.store, &field, policy).await?;
            }
        }
        // Responsibilities newly given name existing groups and a valid agent.
        for (index, responsibility) in next.responsibilities.iter().enumerate() {
            if current.is_some_and(|c| c.responsibilities.contains(responsibility)) {
                continue;
            }
            let field = |part: &str| format!("responsibilities[{index}].{part}");
            for (part, group) in [
                ("group_id", Some(responsibility.group_id)),
                ("reader_group_id", responsibility.reader_group_id),
            ] {
                if let Some(group) = group
                    && self.store.group(group).await?.is_none()
                {
                    return Err(Error::invalid(
                        field(part),
                        format!("no group has the id {group}"),
                    ));
                }
            }
            super::references::valid_agent(
                &self.store,
                &field("agent_id"),
                responsibility.agent_id,
            )
            .await?;
        }
        let named: Vec<Uuid> = next.price_lists.iter().map(|a| a.price_list_id).collect();
        let existing = self.store.existing_price_lists(&named).await?;
        let mut violations = Violations::default();
        for (index, id) in named.iter().enumerate() {
            if !existing.contains(id) {
                violations.add(
                    format!("price_list_assignments[{index}].price_list_id"),
                    format!("no price list has the id {id}"),
                );
            }
        }
        violations.finish()
    }
}

/// The contact groups `members` are in — a customer's id first, then its organisations'
/// in the customer's order — each once, through the first member in it: a customer's own
/// groups, then its organisations' (the main one first), each member's oldest group first.
pub(crate) async fn reached(
    store: &Store,
    customer: Option<Uuid>,
    members: &[Uuid],
    include_invalid: bool,
) -> Result<Vec<ContactGroupMembership>> {
    let pairs = store.contact_group_ids_of(members).await?;
    let mut seen = HashSet::new();
    let mut reached = Vec::new();
    for member in members {
        for (group, _) in pairs.iter().filter(|(_, m)| m == member) {
            if seen.insert(*group) {
                let via = (Some(*member) != customer && customer.is_some()).then_some(*member);
                reached.push((*group, via));
            }
        }
    }
    let ids: Vec<Uuid> = reached.iter().map(|(group, _)| *group).collect();
    let groups = store.contact_groups(&ids, include_invalid).await?;
    Ok(groups
        .into_iter()
        .map(|contact_group| {
            let via_organisation_id = reached
                .iter()
                .find(|(group, _)| *group == contact_group.id)
                .and_then(|(_, via)| *via);
            ContactGroupMembership {
                contact_group,
                via_organisation_id,
            }
        })
        .collect())
}

fn membership_event(
    actor: &Actor,
    now: jiff::Timestamp,
    group: Uuid,
    kind: ChangeKind,
    contacts: &[Contact],
) -> ChangeEvent {
    let ids = |customers: bool| -> Vec<Uuid> {
        contacts
            .iter()
            .filter_map(|contact| match (contact, customers) {
                (Contact::Customer(id), true) | (Contact::Organisation(id), false) => Some(*id),
                _ => None,
            })
            .collect()
    };
    let (added, removed) = (
        kind == ChangeKind::MembersAdded,
        kind == ChangeKind::MembersRemoved,
    );
    let changes = [
        ("customer_ids", ids(true)),
        ("organisation_ids", ids(false)),
    ]
    .into_iter()
    .filter(|(_, ids)| !ids.is_empty())
    .map(|(field, ids)| FieldChange {
        field: field.into(),
        old: if removed {
            json!(ids)
        } else {
            serde_json::Value::Null
        },
        new: if added {
            json!(ids)
        } else {
            serde_json::Value::Null
        },
    })
    .collect();
    changes::event(actor, now, ResourceType::ContactGroup, group, kind, changes)
}

fn apply_kind(
    violations: &mut Violations,
    kind: &mut ContactGroupKind,
    field: KindField,
    input: &KindInput,
) {
    let name = field.name();
    match field {
        KindField::Name => {
            kind.name = fields::single_line(violations, name, &input.name, 100, true)
        }
        KindField::Comment => {
            kind.comment = fields::multi_line(violations, name, &input.comment, 10_000)
        }
        KindField::Validity => kind.validity = input.validity.unwrap_or(Validity::Valid),
    }
}

fn apply(
    violations: &mut Violations,
    group: &mut ContactGroup,
    field: ContactGroupField,
    input: &ContactGroupInput,
) {
    let name = field.name();
    match field {
        ContactGroupField::Name => {
            group.name = fields::single_line(violations, name, &input.name, 100, true)
        }
        ContactGroupField::KindId => match input.kind_id {
            Some(kind) => group.kind_id = kind,
            None => violations.add(name, "is required"),
        },
        ContactGroupField::Comment => {
            group.comment = fields::multi_line(violations, name, &input.comment, 10_000)
        }
        ContactGroupField::Validity => group.validity = input.validity.unwrap_or(Validity::Valid),
        ContactGroupField::PriceLists => {
            if input.price_lists.len() > MAX_PRICE_LISTS {
                violations.add(name, format!("at most {MAX_PRICE_LISTS} price lists"));
                return;
            }
            let mut seen = HashSet::new();
            for (index, assignment) in input.price_lists.iter().enumerate() {
                if !(1..=1000).contains(&assignment.precedence) {
                    violations.add(format!("{name}[{index}].precedence"), "must be 1 to 1000");
                }
                if !seen.insert(assignment.price_list_id) {
                    violations.add(
                        format!("{name}[{index}].price_list_id"),
                        "names a price list already assigned",
                    );
                }
            }
            let mut lists = input.price_lists.clone();
            lists.sort_by_key(|a| (a.precedence, a.price_list_id));
            group.price_lists = lists;
        }
        ContactGroupField::Responsibilities => {
            if input.responsibilities.len() > MAX_RESPONSIBILITIES {
                violations.add(
                    name,
                    format!("at most {MAX_RESPONSIBILITIES} responsibilities"),
                );
                return;
            }
            for (index, responsibility) in input.responsibilities.iter().enumerate() {
                if input.responsibilities[..index]
                    .iter()
                    .any(|r| r.group_id == responsibility.group_id)
                {
                    violations.add(
                        format!("{name}[{index}].group_id"),
                        "names an area already given a responsibility",
                    );
                }
            }
            let mut responsibilities = input.responsibilities.clone();
            responsibilities.sort_by_key(|r| r.group_id);
            group.responsibilities = responsibilities;
        }
        ContactGroupField::SlaContract => {
            let mut levels: Vec<(Severity, Uuid)> = Vec::new();
            for (index, (severity, policy)) in input.sla_levels.iter().enumerate() {
                match severity {
                    None => {
                        violations.add(format!("{name}.levels[{index}].severity"), "is required")
                    }
                    Some(severity) if levels.iter().any(|(s, _)| s == severity) => violations.add(
                        format!("{name}.levels[{index}].severity"),
                        "names a severity already given a level",
                    ),
                    Some(severity) => levels.push((*severity, *policy)),
                }
            }
            if !input.sla_levels.is_empty() && input.sla_default_policy.is_none() {
                violations.add(
                    format!("{name}.default_sla_policy_id"),
                    "is required when levels are given: it holds until the severity is assessed",
                );
            }
            levels.sort();
            group.sla = SlaContract {
                default_policy: input.sla_default_policy,
                levels,
            };
        }
    }
}

fn kind_audit(kind: &ContactGroupKind) -> Audit {
    vec![
        ("name", json!(kind.name)),
        ("comment", json!(kind.comment)),
        ("validity", json!(kind.validity)),
    ]
}

fn audit(group: &ContactGroup) -> Audit {
    vec![
        ("name", json!(group.name)),
        ("kind_id", json!(group.kind_id)),
        ("comment", json!(group.comment)),
        ("validity", json!(group.validity)),
        ("price_list_assignments", json!(group.price_lists)),
        ("sla_contract", json!(group.sla)),
        ("responsibilities", json!(group.responsibilities)),
    ]
}
