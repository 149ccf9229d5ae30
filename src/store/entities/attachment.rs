use sea_orm::entity::prelude::*;

/// A row of `attachments`; its content is in `attachment_chunks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attachments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub comment_id: Uuid,
    pub file_name: String,
    /// `file_name` case-folded, for searching.
    pub file_name_key: String,
    pub content_type: String,
    pub description: String,
    pub size: i64,
    /// Lower-case hex.
    pub sha256: String,
    /// False while the upload runs; only complete attachments are shown.
    pub complete: bool,
    pub create_time: i64,
    /// The last chunk's arrival, to find uploads abandoned by a crashed server.
    pub update_time: i64,
    /// When it was deleted (softly); restored ones have none.
    pub delete_time: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
