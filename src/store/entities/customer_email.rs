use sea_orm::entity::prelude::*;

/// A row of `customer_emails`: every address of every customer, unique case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customer_emails")]
pub struct Model {
    /// The address lower-cased.
    #[sea_orm(primary_key, auto_increment = false)]
    pub email_key: String,
    /// The address as given (domain lower-case).
    pub email: String,
    pub customer_id: Uuid,
    pub is_primary: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
