use sea_orm::entity::prelude::*;

/// A row of `organisations`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organisations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The organisation's code (the column keeps its first name).
    pub customer_id: String,
    /// The code lower-cased: the unique key.
    pub customer_id_key: String,
    pub name: String,
    /// `name` lower-cased: the sort key.
    pub name_key: String,
    pub street: String,
    pub zip: String,
    pub city: String,
    pub country: String,
    pub url: String,
    pub comment: String,
    pub validity: String,
    pub domain_assignment: bool,
    pub external_id: Option<String>,
    /// JSON object of strings.
    pub custom_fields: String,
    /// code, name and city lower-cased, for substring search.
    pub search: String,
    pub sla_policy_id: Option<Uuid>,
    /// JSON array of the email domains, sorted: a copy of `organisation_domains` for reads.
    pub email_domains: String,
    pub default_assignee_id: Option<Uuid>,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
    /// The directory the organisation is filed in.
    pub directory_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
