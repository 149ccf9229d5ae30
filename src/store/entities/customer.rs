use sea_orm::entity::prelude::*;

/// A row of `customers`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub email: String,
    /// `email` lower-cased: the sort key (uniqueness lives in `customer_emails`).
    pub email_key: String,
    /// The domain of `email`, for domain assignment.
    pub email_domain: String,
    pub login: Option<String>,
    /// `login` lower-cased: the unique key.
    pub login_key: Option<String>,
    pub first_name: String,
    pub last_name: String,
    /// Last name and first name lower-cased: the sort key.
    pub name_key: String,
    pub title: String,
    pub phone: String,
    pub mobile: String,
    pub organisation_id: Option<Uuid>,
    pub customer_type: String,
    /// JSON object of strings.
    pub custom_fields: String,
    pub external_id: Option<String>,
    pub validity: String,
    /// Names, email and login lower-cased, for substring search.
    pub search: String,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
    /// The directory the customer is filed in.
    pub directory_id: Option<Uuid>,
    /// The customer source the customer is read from; NULL for the helpdesk's own.
    pub source: Option<String>,
    /// The entry's key in that source.
    pub source_key: Option<String>,
    /// The last sync run of the source that saw the entry.
    pub source_seen: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
