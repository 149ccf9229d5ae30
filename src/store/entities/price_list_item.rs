use sea_orm::entity::prelude::*;

/// A row of `price_list_items`: one item of a price list.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "price_list_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub price_list_id: Uuid,
    /// `item_code` case-folded: unique in the list.
    #[sea_orm(primary_key, auto_increment = false)]
    pub item_code_key: String,
    pub item_code: String,
    pub name: String,
    /// In ten-thousandths of the currency's unit.
    pub unit_price: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
