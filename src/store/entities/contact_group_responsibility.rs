use sea_orm::entity::prelude::*;

/// A row of `contact_group_responsibilities`: who is responsible for the new tickets of a
/// contact group's members in one area (a group), and which group reads them.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_group_responsibilities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_group_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: Uuid,
    pub agent_id: Uuid,
    pub reader_group_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
