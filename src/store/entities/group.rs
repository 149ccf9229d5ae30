use sea_orm::entity::prelude::*;

/// A row of `groups`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "groups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// `name` lower-cased: the unique key and sort key.
    pub name_key: String,
    pub comment: String,
    pub validity: String,
    pub responsible_agent_id: Option<Uuid>,
    pub default_sla_policy_id: Option<Uuid>,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
