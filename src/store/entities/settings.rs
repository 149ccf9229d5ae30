use sea_orm::entity::prelude::*;

/// The one row of `settings` (id 1).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub auto_create_organisations: bool,
    pub auto_create_organisation_country: String,
    pub customer_group_support: bool,
    /// JSON array of group ids.
    pub always_groups: String,
    /// JSON array of group ids.
    pub company_always_groups: String,
    pub update_time: i64,
    pub version: i64,
    /// The group tickets created without one go to.
    pub default_group_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
