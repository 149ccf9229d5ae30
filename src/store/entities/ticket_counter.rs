use sea_orm::entity::prelude::*;

/// A row of `ticket_counters`: the last ticket number handed out on a day.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_counters")]
pub struct Model {
    /// The day, as `YYYYMMDD` (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: i64,
    pub last: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
