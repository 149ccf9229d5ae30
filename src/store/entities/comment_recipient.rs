use sea_orm::entity::prelude::*;

/// A row of `comment_recipients`: who may read a private comment besides its author.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "comment_recipients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub comment_id: Uuid,
    /// `agent` or `customer`.
    pub recipient_type: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub recipient_id: Uuid,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
