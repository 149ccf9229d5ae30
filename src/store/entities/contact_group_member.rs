use sea_orm::entity::prelude::*;

/// A row of `contact_group_members`: a customer (`customer_id` set) or an organisation
/// (`organisation_id` set) in a contact group; `member_id` is whichever is set.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_group_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_group_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub organisation_id: Option<Uuid>,
    pub create_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
