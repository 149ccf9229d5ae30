//! Price lists and their items, and the rows GetEffectivePrices ranks.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{
    Cursor, IdempotencyKey, Inserted, Store, StoreFailure, UniqueKey, WriteTx, after, change_log,
    entities::{contact_group_price_list, price_list, price_list_item},
    finish, fold_case, idempotency, timestamp, validity,
};
use crate::{
    error::{Error, Result},
    model::{ChangeEvent, Price, PriceItem, PriceList, Validity},
};

const UNIQUE_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "price list",
    index: "ux_price_lists_name_key",
    sqlite_column: "price_lists.name_key",
    field: "name",
    reason: "NAME_TAKEN",
}];

/// A price list that applies through a contact group: (contact group, price list,
/// precedence, currency).
pub type RankedList = (Uuid, Uuid, i32, String);

impl Store {
    /// Inserts `list` with its items and its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %list.id))]
    pub async fn insert_price_list(
        &self,
        list: &PriceList,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<PriceList>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) = idempotency::claim(&tx, key, list.id, list.create_time).await? {
                return Ok(replay);
            }
            price_list::Entity::insert(list_model(list))
                .exec_without_returning(&*tx)
                .await?;
            insert_items(&tx, list).await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(list.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &UNIQUE_KEYS).await
    }

    /// The price list with `id`, with its items.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn price_list(&self, id: Uuid) -> Result<Option<PriceList>> {
        let row = price_list::Entity::find_by_id(id)
            .one(self.reader())
            .await?;
        self.with_items(row).await
    }

    /// The price list with this name (case-insensitive), with its items.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn price_list_by_name(&self, name: &str) -> Result<Option<PriceList>> {
        let row = price_list::Entity::find()
            .filter(price_list::Column::NameKey.eq(fold_case(name)))
            .one(self.reader())
            .await?;
        self.with_items(row).await
    }

    /// Of `ids`, those that name a price list.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn existing_price_lists(&self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(price_list::Entity::find()
            .select_only()
            .column(price_list::Column::Id)
            .filter(price_list::Column::Id.is_in(ids.iter().copied()))
            .into_tuple()
            .all(self.reader())
            .await?)
    }

    /// Writes `list` over its stored version `expected_version` (its items replaced when
    /// `items_changed`) and records `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %list.id))]
    pub async fn update_price_list(
        &self,
        list: &PriceList,
        expected_version: i64,
        items_changed: bool,
        event: &ChangeEvent,
    ) -> Result<PriceList> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = price_list::Entity::update_many()
                .set(list_model(list))
                .filter(price_list::Column::Id.eq(list.id))
                .filter(price_list::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "price list",
                }));
            }
            if items_changed {
                price_list_item::Entity::delete_many()
                    .filter(price_list_item::Column::PriceListId.eq(list.id))
                    .exec(&*tx)
                    .await?;
                insert_items(&tx, list).await?;
            }
            change_log::append(&tx, event).await?;
            Ok(list.clone())
        }
        .await;
        finish(tx, outcome, &UNIQUE_KEYS).await
    }

    /// Up to `limit` price lists by name after `cursor`, without items; valid ones only
    /// unless `include_invalid`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_price_lists(
        &self,
        include_invalid: bool,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<PriceList>> {
        use price_list::Column;
        let mut query = price_list::Entity::find();
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
            .map(|row| list_from_row(row, Vec::new()))
            .collect()
    }

    /// The valid price lists (of `currency`, if given) applied to the contact groups
    /// `groups`, as (group, list, precedence, currency), at most 10,000.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn price_lists_of_groups(
        &self,
        groups: &[Uuid],
        currency: Option<&str>,
    ) -> Result<Vec<RankedList>> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        use contact_group_price_list::Column;
        let assignments: Vec<(Uuid, Uuid, i32)> = contact_group_price_list::Entity::find()
            .select_only()
            .column(Column::ContactGroupId)
            .column(Column::PriceListId)
            .column(Column::Precedence)
            .filter(Column::ContactGroupId.is_in(groups.iter().copied()))
            .limit(10_000)
            .into_tuple()
            .all(self.reader())
            .await?;
        let mut ids: Vec<Uuid> = assignments.iter().map(|(_, list, _)| *list).collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut lists = price_list::Entity::find()
            .select_only()
            .column(price_list::Column::Id)
            .column(price_list::Column::Currency)
            .filter(price_list::Column::Id.is_in(ids))
            .filter(price_list::Column::Validity.eq(Validity::Valid.as_str()));
        if let Some(currency) = currency {
            lists = lists.filter(price_list::Column::Currency.eq(currency));
        }
        let currencies: std::collections::HashMap<Uuid, String> = lists
            .into_tuple()
            .all(self.reader())
            .await?
            .into_iter()
            .collect();
        Ok(assignments
            .into_iter()
            .filter_map(|(group, list, precedence)| {
                currencies
                    .get(&list)
                    .map(|currency| (group, list, precedence, currency.clone()))
            })
            .collect())
    }

    /// Up to `limit` item rows of the price lists `lists`, ordered by case-folded item code,
    /// after `after` and among `codes` (case-folded) when given, as (list, item).
    #[tracing::instrument(skip(self, codes), level = "debug", err(level = "debug"))]
    pub async fn price_items(
        &self,
        lists: &[Uuid],
        after: Option<&str>,
        codes: &[String],
        limit: u64,
    ) -> Result<Vec<(Uuid, String, PriceItem)>> {
        if lists.is_empty() {
            return Ok(Vec::new());
        }
        use price_list_item::Column;
        let mut query = price_list_item::Entity::find()
            .filter(Column::PriceListId.is_in(lists.iter().copied()));
        if let Some(after) = after {
            query = query.filter(Column::ItemCodeKey.gt(after));
        }
        if !codes.is_empty() {
            query = query.filter(Column::ItemCodeKey.is_in(codes.iter().cloned()));
        }
        Ok(query
            .order_by_asc(Column::ItemCodeKey)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(|row| {
                (
                    row.price_list_id,
                    row.item_code_key.clone(),
                    item_from_row(row),
                )
            })
            .collect())
    }

    async fn with_items(&self, row: Option<price_list::Model>) -> Result<Option<PriceList>> {
        let Some(row) = row else {
            return Ok(None);
        };
        let items = price_list_item::Entity::find()
            .filter(price_list_item::Column::PriceListId.eq(row.id))
            .order_by_asc(price_list_item::Column::ItemCodeKey)
            .all(self.reader())
            .await?
            .into_iter()
            .map(item_from_row)
            .collect();
        list_from_row(row, items).map(Some)
    }
}

async fn insert_items(tx: &WriteTx, list: &PriceList) -> Result<(), StoreFailure> {
    // Chunks keep each statement under SQLite's limit of bound parameters.
    for chunk in list.items.chunks(100) {
        price_list_item::Entity::insert_many(chunk.iter().map(|item| {
            price_list_item::ActiveModel {
                price_list_id: Set(list.id),
                item_code_key: Set(fold_case(&item.item_code)),
                item_code: Set(item.item_code.clone()),
                name: Set(item.name.clone()),
                unit_price: Set(item.unit_price.0),
            }
        }))
        .exec_without_returning(&**tx)
        .await?;
    }
    Ok(())
}

/// The cursor that resumes a list of price lists after `list`.
pub fn price_list_cursor(list: &PriceList) -> Cursor {
    Cursor {
        key: fold_case(&list.name),
        id: list.id,
    }
}

fn item_from_row(row: price_list_item::Model) -> PriceItem {
    PriceItem {
        item_code: row.item_code,
        name: row.name,
        unit_price: Price(row.unit_price),
    }
}

fn list_model(list: &PriceList) -> price_list::ActiveModel {
    price_list::ActiveModel {
        id: Set(list.id),
        name: Set(list.name.clone()),
        name_key: Set(fold_case(&list.name)),
        currency: Set(list.currency.clone()),
        comment: Set(list.comment.clone()),
        validity: Set(list.validity.as_str().to_owned()),
        create_time: Set(list.create_time.as_microsecond()),
        update_time: Set(list.update_time.as_microsecond()),
        version: Set(list.version),
    }
}

fn list_from_row(row: price_list::Model, items: Vec<PriceItem>) -> Result<PriceList> {
    Ok(PriceList {
        id: row.id,
        validity: validity(&row.validity)?,
        name: row.name,
        currency: row.currency,
        comment: row.comment,
        items,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}
