use sea_orm::entity::prelude::*;

/// A row of `webhooks`: a subscription to the change feed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub url: String,
    pub description: String,
    /// The key deliveries are signed with (kept as given: it must sign).
    pub secret: String,
    /// JSON array of resource type names; all when empty.
    pub resource_types: String,
    /// JSON array of change kind names; all when empty.
    pub kinds: String,
    pub active: bool,
    pub max_attempts: i32,
    /// The feed position up to which deliveries were made.
    pub feed_cursor: i64,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
