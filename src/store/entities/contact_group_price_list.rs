use sea_orm::entity::prelude::*;

/// A row of `contact_group_price_lists`: a price list applied to a contact group.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_group_price_lists")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_group_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub price_list_id: Uuid,
    /// Lower goes first.
    pub precedence: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
