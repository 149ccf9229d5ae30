use sea_orm::entity::prelude::*;

/// A row of `tokens`: an API token, known by the SHA-256 of its secret only.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    pub kind: String,
    pub subject_id: Option<Uuid>,
    pub description: String,
    pub create_time: i64,
    pub expire_time: Option<i64>,
    pub revoke_time: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
