use sea_orm::entity::prelude::*;

/// A row of `activities`: a named action on customers or organisations, bound to a webhook.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// `name` lower-cased: the unique key and sort key.
    pub name_key: String,
    pub description: String,
    pub webhook_id: Uuid,
    /// `customer` or `organisation`.
    pub applies_to: String,
    /// JSON array of customer types it is offered for; all when empty.
    pub customer_types: String,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
