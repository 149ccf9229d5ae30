//! The field catalogue: customer types and custom-field definitions.

use std::{sync::Arc, time::Duration};

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{
    Cursor, IdempotencyKey, Inserted, Kept, Store, StoreFailure, UniqueKey, after, change_log,
    entities::{customer_type, field_definition},
    finish, fold_case, idempotency, timestamp, validity,
};
use crate::{
    error::{Error, Result},
    model::{ChangeEvent, CustomerType, FieldDefinition, FieldValueType, RecordType, Validity},
};

const TYPE_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "customer type",
    index: "ux_customer_types_name_key",
    sqlite_column: "customer_types.name_key",
    field: "name",
    reason: "NAME_TAKEN",
}];

const DEFINITION_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "field definition",
    index: "ux_field_definitions_key",
    sqlite_column: "field_definitions.record_type, field_definitions.key",
    field: "key",
    reason: "KEY_TAKEN",
}];

impl Store {
    /// Inserts customer type `kind` with its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %kind.id))]
    pub async fn insert_customer_type(
        &self,
        kind: &CustomerType,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<CustomerType>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) = idempotency::claim(&tx, key, kind.id, kind.create_time).await? {
                return Ok(replay);
            }
            customer_type::Entity::insert(type_model(kind))
                .exec_without_returning(&*tx)
                .await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(kind.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &TYPE_KEYS).await
    }

    /// The customer type with `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn customer_type(&self, id: Uuid) -> Result<Option<CustomerType>> {
        customer_type::Entity::find_by_id(id)
            .one(self.reader())
            .await?
            .map(type_from_row)
            .transpose()
    }

    /// Writes customer type `kind` over its stored version `expected_version` and records
    /// `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %kind.id))]
    pub async fn update_customer_type(
        &self,
        kind: &CustomerType,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<CustomerType> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = customer_type::Entity::update_many()
                .set(type_model(kind))
                .filter(customer_type::Column::Id.eq(kind.id))
                .filter(customer_type::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "customer type",
                }));
            }
            change_log::append(&tx, event).await?;
            Ok(kind.clone())
        }
        .await;
        finish(tx, outcome, &TYPE_KEYS).await
    }

    /// Up to `limit` customer types by name after `cursor`; valid ones only unless
    /// `include_invalid`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_customer_types(
        &self,
        include_invalid: bool,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<CustomerType>> {
        use customer_type::Column;
        let mut query = customer_type::Entity::find();
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
            .map(type_from_row)
            .collect()
    }

    /// Inserts field definition `definition` with its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %definition.id))]
    pub async fn insert_field_definition(
        &self,
        definition: &FieldDefinition,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<FieldDefinition>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) =
                idempotency::claim(&tx, key, definition.id, definition.create_time).await?
            {
                return Ok(replay);
            }
            field_definition::Entity::insert(definition_model(definition))
                .exec_without_returning(&*tx)
                .await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(definition.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &DEFINITION_KEYS).await
    }

    /// The field definition with `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn field_definition(&self, id: Uuid) -> Result<Option<FieldDefinition>> {
        field_definition::Entity::find_by_id(id)
            .one(self.reader())
            .await?
            .map(definition_from_row)
            .transpose()
    }

    /// Writes `definition` over its stored version `expected_version` and records `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %definition.id))]
    pub async fn update_field_definition(
        &self,
        definition: &FieldDefinition,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<FieldDefinition> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = field_definition::Entity::update_many()
                .set(definition_model(definition))
                .filter(field_definition::Column::Id.eq(definition.id))
                .filter(field_definition::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "field definition",
                }));
            }
            change_log::append(&tx, event).await?;
            Ok(definition.clone())
        }
        .await;
        finish(tx, outcome, &DEFINITION_KEYS).await
    }

    /// Up to `limit` field definitions (of `record_type` if given) by record type and key
    /// after `cursor`; valid ones only unless `include_invalid`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_field_definitions(
        &self,
        record_type: Option<RecordType>,
        include_invalid: bool,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<FieldDefinition>> {
        use field_definition::Column;
        let mut query = field_definition::Entity::find();
        if let Some(record_type) = record_type {
            query = query.filter(Column::RecordType.eq(record_type.as_str()));
        }
        if !include_invalid {
            query = query.filter(Column::Validity.eq(Validity::Valid.as_str()));
        }
        if let Some(cursor) = cursor {
            // The cursor's key is "record type/key", which orders as the two columns do.
            let (kind, key) = cursor
                .key
                .split_once('/')
                .unwrap_or((cursor.key.as_str(), ""));
            query = query.filter(
                sea_orm::Condition::any()
                    .add(Column::RecordType.gt(kind))
                    .add(
                        sea_orm::Condition::all()
                            .add(Column::RecordType.eq(kind))
                            .add(Column::Key.gt(key)),
                    ),
            );
        }
        query
            .order_by_asc(Column::RecordType)
            .order_by_asc(Column::Key)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(definition_from_row)
            .collect()
    }

    /// The valid customer types and the valid field definitions: what creates, updates and
    /// imports are checked against (at most 10,000 of each). Kept while no change that
    /// shapes rights or configuration has committed (a catalogue change is one; see
    /// [`crate::model::ChangeEvent::shapes_rights`]) and for at most half a second, like
    /// rights: a change made here is seen by the next write here, on another replica as soon
    /// as its notification arrives.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn field_catalogue(&self) -> Result<Catalogue> {
        let generation = self.rights_generation();
        if let Some(kept) = self.configuration.catalogue.get(generation) {
            return Ok(kept);
        }
        let types = customer_type::Entity::find()
            .filter(customer_type::Column::Validity.eq(Validity::Valid.as_str()))
            .limit(10_000)
            .all(self.reader())
            .await?
            .into_iter()
            .map(type_from_row)
            .collect::<Result<_>>()?;
        let definitions = field_definition::Entity::find()
            .filter(field_definition::Column::Validity.eq(Validity::Valid.as_str()))
            .limit(10_000)
            .all(self.reader())
            .await?
            .into_iter()
            .map(definition_from_row)
            .collect::<Result<_>>()?;
        let catalogue: Catalogue = Arc::new((types, definitions));
        self.configuration
            .catalogue
            .put(generation, catalogue.clone());
        Ok(catalogue)
    }

    /// Whether any valid contact group has an SLA contract or a responsibility: when none
    /// does, a new ticket need not look its customer's contact groups up. Kept as
    /// [`Store::field_catalogue`] is.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn contact_groups_route(&self) -> Result<bool> {
        use super::entities::{contact_group, contact_group_responsibility};
        let generation = self.rights_generation();
        if let Some(kept) = self.configuration.routing.get(generation) {
            return Ok(kept);
        }
        let valid = contact_group::Column::Validity.eq(Validity::Valid.as_str());
        let with_contract = contact_group::Entity::find()
            .select_only()
            .column(contact_group::Column::Id)
            .filter(valid.clone())
            .filter(contact_group::Column::SlaDefaultPolicyId.is_not_null())
            .limit(1)
            .into_tuple::<Uuid>()
            .one(self.reader())
            .await?
            .is_some();
        let routes = with_contract
            || contact_group_responsibility::Entity::find()
                .select_only()
                .column(contact_group_responsibility::Column::ContactGroupId)
                .limit(1)
                .into_tuple::<Uuid>()
                .one(self.reader())
                .await?
                .is_some();
        self.configuration.routing.put(generation, routes);
        Ok(routes)
    }
}

/// The valid customer types and field definitions.
pub type Catalogue = Arc<(Vec<CustomerType>, Vec<FieldDefinition>)>;

/// How long a kept configuration is trusted at most, should a replica's notification be
/// lost (as rights are).
const CONFIGURATION_TTL: Duration = Duration::from_millis(500);

/// The configuration writes are checked against, as last read (see [`Kept`]).
#[derive(Debug)]
pub(crate) struct ConfigurationCache {
    catalogue: Kept<Catalogue>,
    routing: Kept<bool>,
}

impl Default for ConfigurationCache {
    fn default() -> Self {
        Self {
            catalogue: Kept::new(CONFIGURATION_TTL),
            routing: Kept::new(CONFIGURATION_TTL),
        }
    }
}

/// The cursor that resumes a list of customer types after `kind`.
pub fn customer_type_cursor(kind: &CustomerType) -> Cursor {
    Cursor {
        key: fold_case(&kind.name),
        id: kind.id,
    }
}

/// The cursor that resumes a list of field definitions after `definition`.
pub fn field_definition_cursor(definition: &FieldDefinition) -> Cursor {
    Cursor {
        key: format!("{}/{}", definition.record_type.as_str(), definition.key),
        id: definition.id,
    }
}

fn type_model(kind: &CustomerType) -> customer_type::ActiveModel {
    customer_type::ActiveModel {
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

fn type_from_row(row: customer_type::Model) -> Result<CustomerType> {
    Ok(CustomerType {
        id: row.id,
        validity: validity(&row.validity)?,
        name: row.name,
        comment: row.comment,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}

fn definition_model(definition: &FieldDefinition) -> field_definition::ActiveModel {
    field_definition::ActiveModel {
        id: Set(definition.id),
        record_type: Set(definition.record_type.as_str().to_owned()),
        key: Set(definition.key.clone()),
        display_name: Set(definition.display_name.clone()),
        value_type: Set(definition.value_type.as_str().to_owned()),
        required: Set(definition.required),
        allowed_values: Set(super::encode_json(&definition.allowed_values)),
        comment: Set(definition.comment.clone()),
        validity: Set(definition.validity.as_str().to_owned()),
        create_time: Set(definition.create_time.as_microsecond()),
        update_time: Set(definition.update_time.as_microsecond()),
        version: Set(definition.version),
    }
}

fn definition_from_row(row: field_definition::Model) -> Result<FieldDefinition> {
    Ok(FieldDefinition {
        id: row.id,
        record_type: RecordType::parse(&row.record_type).ok_or_else(|| {
            Error::Internal(format!("unknown stored record type {:?}", row.record_type))
        })?,
        value_type: FieldValueType::parse(&row.value_type).ok_or_else(|| {
            Error::Internal(format!("unknown stored value type {:?}", row.value_type))
        })?,
        validity: validity(&row.validity)?,
        allowed_values: super::decode_json(&row.allowed_values, "allowed values")?,
        key: row.key,
        display_name: row.display_name,
        required: row.required,
        comment: row.comment,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}
