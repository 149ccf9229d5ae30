//! Comments on tickets, organisations and customers, their recipients, and attachments stored
//! in chunks.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Comments::Table)
                    .col(pk_uuid(Comments::Id))
                    .col(text(Comments::ParentType))
                    .col(uuid(Comments::ParentId))
                    .col(text(Comments::AuthorType))
                    .col(uuid(Comments::AuthorId))
                    .col(text(Comments::Body))
                    .col(text(Comments::Search))
                    .col(text(Comments::Visibility))
                    .col(big_integer(Comments::CreateTime))
                    .col(big_integer(Comments::UpdateTime))
                    .col(big_integer_null(Comments::DeleteTime))
                    .col(big_integer(Comments::Version))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "ix_comments_parent",
                &[Comments::ParentId, Comments::CreateTime, Comments::Id][..],
            ),
            ("ix_comments_author", &[Comments::AuthorId][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Comments::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(CommentRecipients::Table)
                    .col(uuid(CommentRecipients::CommentId))
                    .col(text(CommentRecipients::RecipientType))
                    .col(uuid(CommentRecipients::RecipientId))
                    .primary_key(
                        Index::create()
                            .name("pk_comment_recipients")
                            .col(CommentRecipients::CommentId)
                            .col(CommentRecipients::RecipientId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_comment_recipients_comment")
                            .from(CommentRecipients::Table, CommentRecipients::CommentId)
                            .to(Comments::Table, Comments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_comment_recipients_recipient")
                    .table(CommentRecipients::Table)
                    .col(CommentRecipients::RecipientId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .col(pk_uuid(Attachments::Id))
                    .col(uuid(Attachments::CommentId))
                    .col(text(Attachments::FileName))
                    .col(text(Attachments::ContentType))
                    .col(text(Attachments::Description))
                    .col(big_integer(Attachments::Size))
                    .col(text(Attachments::Sha256))
                    .col(boolean(Attachments::Complete))
                    .col(big_integer(Attachments::CreateTime))
                    .col(big_integer(Attachments::UpdateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_attachments_comment")
                            .from(Attachments::Table, Attachments::CommentId)
                            .to(Comments::Table, Comments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_attachments_comment")
                    .table(Attachments::Table)
                    .col(Attachments::CommentId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AttachmentChunks::Table)
                    .col(uuid(AttachmentChunks::AttachmentId))
                    .col(integer(AttachmentChunks::Seq))
                    .col(blob(AttachmentChunks::Data))
                    .primary_key(
                        Index::create()
                            .name("pk_attachment_chunks")
                            .col(AttachmentChunks::AttachmentId)
                            .col(AttachmentChunks::Seq),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_attachment_chunks_attachment")
                            .from(AttachmentChunks::Table, AttachmentChunks::AttachmentId)
                            .to(Attachments::Table, Attachments::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AttachmentChunks::Table.into_iden(),
            Attachments::Table.into_iden(),
            CommentRecipients::Table.into_iden(),
            Comments::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Comments {
    Table,
    Id,
    ParentType,
    ParentId,
    AuthorType,
    AuthorId,
    Body,
    Search,
    Visibility,
    CreateTime,
    UpdateTime,
    DeleteTime,
    Version,
}

#[derive(DeriveIden)]
enum CommentRecipients {
    Table,
    CommentId,
    RecipientType,
    RecipientId,
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    CommentId,
    FileName,
    ContentType,
    Description,
    Size,
    Sha256,
    Complete,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum AttachmentChunks {
    Table,
    AttachmentId,
    Seq,
    Data,
}
