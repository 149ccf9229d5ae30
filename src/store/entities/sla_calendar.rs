use sea_orm::entity::prelude::*;

/// A row of `sla_calendars`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sla_calendars")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// `name` lower-cased: the unique key and sort key.
    pub name_key: String,
    pub time_zone: String,
    /// JSON: seven arrays (Monday first) of `[start, end]` minutes.
    pub business_hours: String,
    /// JSON array of `YYYY-MM-DD` dates.
    pub holidays: String,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
