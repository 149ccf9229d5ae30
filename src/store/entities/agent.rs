use sea_orm::entity::prelude::*;

/// A row of `agents`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub login: String,
    /// `login` lower-cased: the unique key and sort key.
    pub login_key: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub manage_customers: bool,
    /// `none`, `read` or `write`: what the agent may do with notes on organisations and
    /// customers.
    pub details_access: String,
    pub validity: String,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
