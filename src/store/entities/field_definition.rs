use sea_orm::entity::prelude::*;

/// A row of `field_definitions`: one custom field of customers or organisations.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "field_definitions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `customer` or `organisation`.
    pub record_type: String,
    /// Unique per record type.
    pub key: String,
    pub display_name: String,
    pub value_type: String,
    pub required: bool,
    /// JSON array of the allowed values.
    pub allowed_values: String,
    pub comment: String,
    pub validity: String,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
