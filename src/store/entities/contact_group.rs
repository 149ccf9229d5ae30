use sea_orm::entity::prelude::*;

/// A row of `contact_groups`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_groups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// `name` case-folded: unique.
    pub name_key: String,
    pub kind_id: Uuid,
    pub comment: String,
    pub validity: String,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
    /// The SLA contract's default level.
    pub sla_default_policy_id: Option<Uuid>,
    /// JSON array of `[severity, policy id]`.
    pub sla_levels: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
