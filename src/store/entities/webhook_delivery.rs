use sea_orm::entity::prelude::*;

/// A row of `webhook_deliveries`: one change to deliver to one subscription, and how its
/// delivery went.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The change's feed position.
    pub position: i64,
    /// The change's sequence number in the change log.
    pub seq: i64,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub kind: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_time: i64,
    /// A replica that took it may deliver it until then.
    pub lease_until: Option<i64>,
    pub last_status: Option<i32>,
    pub last_error: String,
    pub delivered_time: Option<i64>,
    pub create_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
