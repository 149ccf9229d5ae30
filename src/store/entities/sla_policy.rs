use sea_orm::entity::prelude::*;

/// A row of `sla_policies`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sla_policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// `name` lower-cased: the unique key and sort key.
    pub name_key: String,
    pub first_response_seconds: Option<i64>,
    pub update_seconds: Option<i64>,
    pub solution_seconds: Option<i64>,
    pub warning_percent: i32,
    pub calendar_id: Option<Uuid>,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
