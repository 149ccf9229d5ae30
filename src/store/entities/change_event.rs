use sea_orm::entity::prelude::*;

/// A row of `change_events`: the one change log.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub occur_time: i64,
    pub actor: String,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub kind: String,
    /// JSON array of `{field, old, new}`.
    pub changes: String,
    /// The place in the change feed (PostgreSQL; SQLite's feed is ordered by `seq`), set by
    /// the sequencer after commit.
    pub position: Option<i64>,
    /// Whether the recorded values were erased (EraseCustomer, the history retention): the
    /// field names remain, their values are null.
    pub values_erased: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
