use sea_orm::entity::prelude::*;

/// A row of `comments`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "comments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `ticket`, `organisation` or `customer`.
    pub parent_type: String,
    pub parent_id: Uuid,
    /// `agent`, `customer` or `admin` (then the id is the admin token's).
    pub author_type: String,
    pub author_id: Uuid,
    pub body: String,
    /// `body` lower-cased, for substring search.
    pub search: String,
    pub visibility: String,
    pub create_time: i64,
    pub update_time: i64,
    pub delete_time: Option<i64>,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
