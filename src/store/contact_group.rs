//! Contact groups: the catalogue of kinds, the groups with the price lists applied to them,
//! and their members.

use std::collections::HashSet;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{
    Cursor, IdempotencyKey, Inserted, Store, StoreFailure, UniqueKey, WriteTx, after, after_time,
    change_log,
    entities::{
        contact_group, contact_group_kind, contact_group_member, contact_group_price_list,
        contact_group_responsibility,
    },
    finish, fold_case, idempotency, timestamp, validity,
};
use crate::{
    error::{Error, Result},
    model::{
        ChangeEvent, Contact, ContactGroup, ContactGroupKind, ContactGroupMember,
        PriceListAssignment, Responsibility, Severity, SlaContract, Validity,
    },
};

const KIND_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "contact group kind",
    index: "ux_contact_group_kinds_name_key",
    sqlite_column: "contact_group_kinds.name_key",
    field: "name",
    reason: "NAME_TAKEN",
}];

const GROUP_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "contact group",
    index: "ux_contact_groups_name_key",
    sqlite_column: "contact_groups.name_key",
    field: "name",
    reason: "NAME_TAKEN",
}];

impl Store {
    /// Inserts `kind` with its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %kind.id))]
    pub async fn insert_contact_group_kind(
        &self,
        kind: &ContactGroupKind,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<ContactGroupKind>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) = idempotency::claim(&tx, key, kind.id, kind.create_time).await? {
                return Ok(replay);
            }
            contact_group_kind::Entity::insert(kind_model(kind))
                .exec_without_returning(&*tx)
                .await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(kind.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &KIND_KEYS).await
    }

    /// The contact group kind with `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn contact_group_kind(&self, id: Uuid) -> Result<Option<ContactGroupKind>> {
        contact_group_kind::Entity::find_by_id(id)
            .one(self.reader())
            .await?
            .map(kind_from_row)
            .transpose()
    }

    /// Writes `kind` over its stored version `expected_version` and records `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %kind.id))]
    pub async fn update_contact_group_kind(
        &self,
        kind: &ContactGroupKind,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<ContactGroupKind> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = contact_group_kind::Entity::update_many()
                .set(kind_model(kind))
                .filter(contact_group_kind::Column::Id.eq(kind.id))
                .filter(contact_group_kind::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "contact group kind",
                }));
            }
            change_log::append(&tx, event).await?;
            Ok(kind.clone())
        }
        .await;
        finish(tx, outcome, &KIND_KEYS).await
    }

    /// Up to `limit` kinds by name after `cursor`; valid ones only unless `include_invalid`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_contact_group_kinds(
        &self,
        include_invalid: bool,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<ContactGroupKind>> {
        use contact_group_kind::Column;
        let mut query = contact_group_kind::Entity::find();
        if !include_invalid {
            query = query.filter(Column::Validity.eq(Validity::Valid.as_str()));
        }
        if let Some(cursor) = cursor {
            query = query.filter(after(Column::NameKey, Column::Id, cursor));
        }
        query
            .order_by_asc(Column::NameKey)
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(kind_from_row)
            .collect()
    }

    /// Inserts `group` with its price lists and its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %group.id))]
    pub async fn insert_contact_group(
        &self,
        group: &ContactGroup,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<ContactGroup>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) = idempotency::claim(&tx, key, group.id, group.create_time).await? {
                return Ok(replay);
            }
            contact_group::Entity::insert(group_model(group))
                .exec_without_returning(&*tx)
                .await?;
            insert_assignments(&tx, group).await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(group.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &GROUP_KEYS).await
    }

    /// The contact group with `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn contact_group(&self, id: Uuid) -> Result<Option<ContactGroup>> {
        let row = contact_group::Entity::find_by_id(id)
            .one(self.reader())
            .await?;
        Ok(self
            .with_assignments(row.into_iter().collect())
            .await?
            .pop())
    }

    /// The contact group with this name (case-insensitive).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn contact_group_by_name(&self, name: &str) -> Result<Option<ContactGroup>> {
        let row = contact_group::Entity::find()
            .filter(contact_group::Column::NameKey.eq(fold_case(name)))
            .one(self.reader())
            .await?;
        Ok(self
            .with_assignments(row.into_iter().collect())
            .await?
            .pop())
    }

    /// The contact groups with these ids, in the order of `ids`; valid ones only unless
    /// `include_invalid`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn contact_groups(
        &self,
        ids: &[Uuid],
        include_invalid: bool,
    ) -> Result<Vec<ContactGroup>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = contact_group::Entity::find()
            .filter(contact_group::Column::Id.is_in(ids.iter().copied()));
        if !include_invalid {
            query = query.filter(contact_group::Column::Validity.eq(Validity::Valid.as_str()));
        }
        let rows = query.all(self.reader()).await?;
        let mut groups = self.with_assignments(rows).await?;
        groups.sort_by_key(|group| ids.iter().position(|id| *id == group.id));
        Ok(groups)
    }

    /// Writes `group` over its stored version `expected_version`, its price lists replaced,
    /// and records `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %group.id))]
    pub async fn update_contact_group(
        &self,
        group: &ContactGroup,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<ContactGroup> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = contact_group::Entity::update_many()
                .set(group_model(group))
                .filter(contact_group::Column::Id.eq(group.id))
                .filter(contact_group::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "contact group",
                }));
            }
            contact_group_price_list::Entity::delete_many()
                .filter(contact_group_price_list::Column::ContactGroupId.eq(group.id))
                .exec(&*tx)
                .await?;
            contact_group_responsibility::Entity::delete_many()
                .filter(contact_group_responsibility::Column::ContactGroupId.eq(group.id))
                .exec(&*tx)
                .await?;
            insert_assignments(&tx, group).await?;
            change_log::append(&tx, event).await?;
            Ok(group.clone())
        }
        .await;
        finish(tx, outcome, &GROUP_KEYS).await
    }

    /// Up to `limit` contact groups by name after `cursor`, of `kind` if given; valid ones
    /// only unless `include_invalid`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_contact_groups(
        &self,
        include_invalid: bool,
        kind: Option<Uuid>,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<ContactGroup>> {
        use contact_group::Column;
        let mut query = contact_group::Entity::find();
        if !include_invalid {
            query = query.filter(Column::Validity.eq(Validity::Valid.as_str()));
        }
        if let Some(kind) = kind {
            query = query.filter(Column::KindId.eq(kind));
        }
        if let Some(cursor) = cursor {
            query = query.filter(after(Column::NameKey, Column::Id, cursor));
        }
        let rows = query
            .order_by_asc(Column::NameKey)
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?;
        self.with_assignments(rows).await
    }

    /// Puts `contacts` into contact group `group` (those in it already stay as they are) and
    /// records `event` naming the ones that joined, made by `event_for` from them. Returns
    /// how many joined.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(group = %group))]
    pub async fn add_contact_group_members(
        &self,
        group: Uuid,
        contacts: &[Contact],
        now: jiff::Timestamp,
        event_for: &(dyn Fn(&[Contact]) -> ChangeEvent + Send + Sync),
    ) -> Result<u64> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let present = members_among(&tx, group, contacts).await?;
            let joining: Vec<Contact> = contacts
                .iter()
                .filter(|contact| !present.contains(&member_id(**contact)))
                .copied()
                .collect();
            if joining.is_empty() {
                return Ok(0);
            }
            contact_group_member::Entity::insert_many(
                joining
                    .iter()
                    .map(|contact| member_model(group, *contact, now)),
            )
            .exec_without_returning(&*tx)
            .await?;
            change_log::append(&tx, &event_for(&joining)).await?;
            Ok(joining.len() as u64)
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Takes `contacts` out of contact group `group` and records the event `event_for` makes
    /// of those that were in it. Returns how many left.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(group = %group))]
    pub async fn remove_contact_group_members(
        &self,
        group: Uuid,
        contacts: &[Contact],
        event_for: &(dyn Fn(&[Contact]) -> ChangeEvent + Send + Sync),
    ) -> Result<u64> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let present = members_among(&tx, group, contacts).await?;
            let leaving: Vec<Contact> = contacts
                .iter()
                .filter(|contact| present.contains(&member_id(**contact)))
                .copied()
                .collect();
            if leaving.is_empty() {
                return Ok(0);
            }
            contact_group_member::Entity::delete_many()
                .filter(contact_group_member::Column::ContactGroupId.eq(group))
                .filter(
                    contact_group_member::Column::MemberId
                        .is_in(leaving.iter().map(|contact| member_id(*contact))),
                )
                .exec(&*tx)
                .await?;
            change_log::append(&tx, &event_for(&leaving)).await?;
            Ok(leaving.len() as u64)
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Up to `limit` members of contact group `group` in the order they joined, after
    /// `cursor` (join time, member id).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_contact_group_members(
        &self,
        group: Uuid,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<ContactGroupMember>> {
        use contact_group_member::Column;
        let mut query =
            contact_group_member::Entity::find().filter(Column::ContactGroupId.eq(group));
        if let Some(cursor) = cursor {
            query = query.filter(after_time(Column::CreateTime, Column::MemberId, cursor)?);
        }
        query
            .order_by_asc(Column::CreateTime)
            .order_by_asc(Column::MemberId)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(|row| {
                let contact = match (row.customer_id, row.organisation_id) {
                    (Some(id), _) => Contact::Customer(id),
                    (None, Some(id)) => Contact::Organisation(id),
                    (None, None) => {
                        return Err(Error::Internal(format!(
                            "contact group member {} is neither customer nor organisation",
                            row.member_id
                        )));
                    }
                };
                Ok(ContactGroupMember {
                    contact,
                    create_time: timestamp(row.create_time)?,
                })
            })
            .collect()
    }

    /// The contact groups each of `members` (customers and organisations) is directly in, as
    /// (group, member) pairs, at most 10,000.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn contact_group_ids_of(&self, members: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        use contact_group_member::Column;
        Ok(contact_group_member::Entity::find()
            .select_only()
            .column(Column::ContactGroupId)
            .column(Column::MemberId)
            .filter(Column::MemberId.is_in(members.iter().copied()))
            .order_by_asc(Column::ContactGroupId)
            .limit(10_000)
            .into_tuple()
            .all(self.reader())
            .await?)
    }

    /// Of `contacts`, those whose customer or organisation does not exist.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn missing_contacts(&self, contacts: &[Contact]) -> Result<Vec<Contact>> {
        use super::entities::{customer, organisation};
        let customers: Vec<Uuid> = contacts
            .iter()
            .filter_map(|c| match c {
                Contact::Customer(id) => Some(*id),
                Contact::Organisation(_) => None,
            })
            .collect();
        let organisations: Vec<Uuid> = contacts
            .iter()
            .filter_map(|c| match c {
                Contact::Organisation(id) => Some(*id),
                Contact::Customer(_) => None,
            })
            .collect();
        let mut found: HashSet<Uuid> = HashSet::new();
        if !customers.is_empty() {
            let ids: Vec<Uuid> = customer::Entity::find()
                .select_only()
                .column(customer::Column::Id)
                .filter(customer::Column::Id.is_in(customers))
                .into_tuple()
                .all(self.reader())
                .await?;
            found.extend(ids);
        }
        if !organisations.is_empty() {
            let ids: Vec<Uuid> = organisation::Entity::find()
                .select_only()
                .column(organisation::Column::Id)
                .filter(organisation::Column::Id.is_in(organisations))
                .into_tuple()
                .all(self.reader())
                .await?;
            found.extend(ids);
        }
        Ok(contacts
            .iter()
            .filter(|contact| !found.contains(&member_id(**contact)))
            .copied()
            .collect())
    }

    /// Loads the price lists of the contact groups of `rows`.
    async fn with_assignments(&self, rows: Vec<contact_group::Model>) -> Result<Vec<ContactGroup>> {
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let assignments = if ids.is_empty() {
            Vec::new()
        } else {
            contact_group_price_list::Entity::find()
                .filter(contact_group_price_list::Column::ContactGroupId.is_in(ids))
                .order_by_asc(contact_group_price_list::Column::Precedence)
                .order_by_asc(contact_group_price_list::Column::PriceListId)
                .all(self.reader())
                .await?
        };
        let responsibilities = if rows.is_empty() {
            Vec::new()
        } else {
            contact_group_responsibility::Entity::find()
                .filter(
                    contact_group_responsibility::Column::ContactGroupId
                        .is_in(rows.iter().map(|row| row.id)),
                )
                .order_by_asc(contact_group_responsibility::Column::GroupId)
                .all(self.reader())
                .await?
        };
        rows.into_iter()
            .map(|row| {
                let responsibilities = responsibilities
                    .iter()
                    .filter(|r| r.contact_group_id == row.id)
                    .map(|r| Responsibility {
                        group_id: r.group_id,
                        agent_id: r.agent_id,
                        reader_group_id: r.reader_group_id,
                    })
                    .collect();
                let price_lists = assignments
                    .iter()
                    .filter(|a| a.contact_group_id == row.id)
                    .map(|a| PriceListAssignment {
                        price_list_id: a.price_list_id,
                        precedence: a.precedence,
                    })
                    .collect();
                group_from_row(row, price_lists, responsibilities)
            })
            .collect()
    }
}

/// Moves the contact groups customer `source` is in to `target` (inside a merge's
/// transaction): the target joins those it was not in, at the source's join time. Returns the
/// groups the target joined.
pub(crate) async fn move_customer_memberships(
    tx: &WriteTx,
    source: Uuid,
    target: Uuid,
) -> Result<Vec<Uuid>, StoreFailure> {
    use contact_group_member::Column;
    let rows = contact_group_member::Entity::find()
        .filter(Column::MemberId.is_in([source, target]))
        .all(&**tx)
        .await?;
    let held: HashSet<Uuid> = rows
        .iter()
        .filter(|row| row.member_id == target)
        .map(|row| row.contact_group_id)
        .collect();
    let joining: Vec<contact_group_member::Model> = rows
        .into_iter()
        .filter(|row| row.member_id == source && !held.contains(&row.contact_group_id))
        .collect();
    let groups = joining.iter().map(|row| row.contact_group_id).collect();
    if !joining.is_empty() {
        contact_group_member::Entity::insert_many(joining.into_iter().map(|row| {
            contact_group_member::ActiveModel {
                contact_group_id: Set(row.contact_group_id),
                member_id: Set(target),
                customer_id: Set(Some(target)),
                organisation_id: Set(None),
                create_time: Set(row.create_time),
            }
        }))
        .exec_without_returning(&**tx)
        .await?;
    }
    contact_group_member::Entity::delete_many()
        .filter(Column::MemberId.eq(source))
        .exec(&**tx)
        .await?;
    Ok(groups)
}

/// The ids among `contacts` that are in `group`, the group's row share-locked so that it
/// cannot go while members join.
async fn members_among(
    tx: &WriteTx,
    group: Uuid,
    contacts: &[Contact],
) -> Result<HashSet<Uuid>, StoreFailure> {
    let found = contact_group::Entity::find_by_id(group)
        .select_only()
        .column(contact_group::Column::Id)
        .lock_shared()
        .into_tuple::<Uuid>()
        .one(&**tx)
        .await?;
    if found.is_none() {
        return Err(StoreFailure::Domain(Error::NotFound {
            resource: "contact group",
        }));
    }
    Ok(contact_group_member::Entity::find()
        .select_only()
        .column(contact_group_member::Column::MemberId)
        .filter(contact_group_member::Column::ContactGroupId.eq(group))
        .filter(
            Condition::all().add(
                contact_group_member::Column::MemberId
                    .is_in(contacts.iter().map(|contact| member_id(*contact))),
            ),
        )
        .into_tuple::<Uuid>()
        .all(&**tx)
        .await?
        .into_iter()
        .collect())
}

async fn insert_assignments(tx: &WriteTx, group: &ContactGroup) -> Result<(), StoreFailure> {
    if !group.responsibilities.is_empty() {
        contact_group_responsibility::Entity::insert_many(group.responsibilities.iter().map(
            |responsibility| contact_group_responsibility::ActiveModel {
                contact_group_id: Set(group.id),
                group_id: Set(responsibility.group_id),
                agent_id: Set(responsibility.agent_id),
                reader_group_id: Set(responsibility.reader_group_id),
            },
        ))
        .exec_without_returning(&**tx)
        .await?;
    }
    if group.price_lists.is_empty() {
        return Ok(());
    }
    contact_group_price_list::Entity::insert_many(group.price_lists.iter().map(|assignment| {
        contact_group_price_list::ActiveModel {
            contact_group_id: Set(group.id),
            price_list_id: Set(assignment.price_list_id),
            precedence: Set(assignment.precedence),
        }
    }))
    .exec_without_returning(&**tx)
    .await?;
    Ok(())
}

fn member_id(contact: Contact) -> Uuid {
    match contact {
        Contact::Customer(id) | Contact::Organisation(id) => id,
    }
}

fn member_model(
    group: Uuid,
    contact: Contact,
    now: jiff::Timestamp,
) -> contact_group_member::ActiveModel {
    let (customer_id, organisation_id) = match contact {
        Contact::Customer(id) => (Some(id), None),
        Contact::Organisation(id) => (None, Some(id)),
    };
    contact_group_member::ActiveModel {
        contact_group_id: Set(group),
        member_id: Set(member_id(contact)),
        customer_id: Set(customer_id),
        organisation_id: Set(organisation_id),
        create_time: Set(now.as_microsecond()),
    }
}

/// The cursor that resumes a list of kinds after `kind`.
pub fn contact_group_kind_cursor(kind: &ContactGroupKind) -> Cursor {
    Cursor {
        key: fold_case(&kind.name),
        id: kind.id,
    }
}

/// The cursor that resumes a list of contact groups after `group`.
pub fn contact_group_cursor(group: &ContactGroup) -> Cursor {
    Cursor {
        key: fold_case(&group.name),
        id: group.id,
    }
}

/// The cursor that resumes a list of members after `member`.
pub fn contact_group_member_cursor(member: &ContactGroupMember) -> Cursor {
    Cursor {
        key: member.create_time.as_microsecond().to_string(),
        id: member_id(member.contact),
    }
}

fn kind_model(kind: &ContactGroupKind) -> contact_group_kind::ActiveModel {
    contact_group_kind::ActiveModel {
        id: Set(kind.id),
        name: Set(kind.name.clone()),
        name_key: Set(fold_case(&kind.name)),
        comment: Set(kind.comment.clone()),
        validity: Set(kind.validity.as_str().to_owned()),
        create_time: Set(kind.create_time.as_microsecond()),
        update_time: Set(kind.update_time.as_microsecond()),
        version: Set(kind.version),
    }
}

fn kind_from_row(row: contact_group_kind::Model) -> Result<ContactGroupKind> {
    Ok(ContactGroupKind {
        id: row.id,
        validity: validity(&row.validity)?,
        name: row.name,
        comment: row.comment,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}

fn group_model(group: &ContactGroup) -> contact_group::ActiveModel {
    contact_group::ActiveModel {
        id: Set(group.id),
        name: Set(group.name.clone()),
        name_key: Set(fold_case(&group.name)),
        kind_id: Set(group.kind_id),
        comment: Set(group.comment.clone()),
        validity: Set(group.validity.as_str().to_owned()),
        create_time: Set(group.create_time.as_microsecond()),
        update_time: Set(group.update_time.as_microsecond()),
        version: Set(group.version),
        sla_default_policy_id: Set(group.sla.default_policy),
        sla_levels: Set(super::encode_json(
            &group
                .sla
                .levels
                .iter()
                .map(|(severity, policy)| (severity.as_str(), *policy))
                .collect::<Vec<_>>(),
        )),
    }
}

fn group_from_row(
    row: contact_group::Model,
    price_lists: Vec<PriceListAssignment>,
    responsibilities: Vec<Responsibility>,
) -> Result<ContactGroup> {
    Ok(ContactGroup {
        id: row.id,
        validity: validity(&row.validity)?,
        name: row.name,
        kind_id: row.kind_id,
        comment: row.comment,
        price_lists,
        responsibilities,
        sla: SlaContract {
            default_policy: row.sla_default_policy_id,
            levels: super::decode_json::<Vec<(String, Uuid)>>(&row.sla_levels, "SLA levels")?
                .into_iter()
                .map(|(name, policy)| {
                    Severity::parse(&name)
                        .map(|severity| (severity, policy))
                        .ok_or_else(|| Error::Internal(format!("unknown stored severity {name:?}")))
                })
                .collect::<Result<_>>()?,
        },
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}
