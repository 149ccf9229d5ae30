use jiff::Timestamp;
use uuid::Uuid;

use super::{Validity, organisation::etag_of};

/// A customer type: a value `Customer::customer_type` may take once the catalogue has any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerType {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// The value, unique case-insensitively.
    pub name: String,
    /// Free text.
    pub comment: String,
    /// Whether it may be given to customers.
    pub validity: Validity,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl CustomerType {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}

/// The kind of record a custom field belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordType {
    /// Customers.
    Customer,
    /// Organisations.
    Organisation,
}

impl RecordType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Organisation => "organisation",
        }
    }

    /// The record type stored under `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Customer, Self::Organisation]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// What a custom field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldValueType {
    /// Any text.
    Text,
    /// A decimal number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// One of the allowed values.
    Choice,
}

impl FieldValueType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Choice => "choice",
        }
    }

    /// The value type stored under `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Text,
            Self::Number,
            Self::Boolean,
            Self::Date,
            Self::Choice,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// The definition of one custom field of customers or organisations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDefinition {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Whose field.
    pub record_type: RecordType,
    /// The key in `custom_fields`.
    pub key: String,
    /// What it is, for forms.
    pub display_name: String,
    /// What it holds.
    pub value_type: FieldValueType,
    /// Whether every record must have it.
    pub required: bool,
    /// The values of a choice.
    pub allowed_values: Vec<String>,
    /// Free text.
    pub comment: String,
    /// Whether it applies.
    pub validity: Validity,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl FieldDefinition {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}
