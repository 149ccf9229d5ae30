use sea_orm::entity::prelude::*;

/// A row of `directories`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// `name` case-folded: unique.
    pub name_key: String,
    pub comment: String,
    /// JSON array of agent ids.
    pub reader_agent_ids: String,
    /// JSON array of group ids.
    pub reader_group_ids: String,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
