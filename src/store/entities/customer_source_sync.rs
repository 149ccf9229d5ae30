use sea_orm::entity::prelude::*;

/// A row of `customer_source_syncs`: one customer source's last sync and its lease.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customer_source_syncs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub run: i64,
    pub lease_until: Option<i64>,
    pub lease_holder: String,
    pub last_start_time: Option<i64>,
    pub last_end_time: Option<i64>,
    pub last_success_time: Option<i64>,
    pub last_full_sync_time: Option<i64>,
    pub kind: String,
    pub entries_read: i64,
    pub entries_changed: i64,
    pub entries_refused: i64,
    pub entries_invalidated: i64,
    pub error: String,
    /// JSON array of `{dn, reason, message}`.
    pub refusals: String,
    pub watermark: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
