//! The field rules of customers: what a client sends, what an update may change, and how
//! each field is checked and normalised.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    changes::Audit,
    email::normalise_email,
    fields::{self, Violations},
};
use crate::{
    error::Result,
    model::{Customer, Validity},
};

/// The most secondary email addresses a client may give one customer.
pub const MAX_SECONDARY_EMAILS: usize = 20;
/// The most secondary organisations one customer may have.
pub const MAX_SECONDARY_ORGANISATIONS: usize = 100;

/// The values a client sends for a customer, before any rule is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CustomerInput {
    /// Primary email address.
    pub email: String,
    /// Further addresses.
    pub secondary_emails: Vec<String>,
    /// Login; empty means none.
    pub login: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Salutation or title.
    pub title: String,
    /// Phone number.
    pub phone: String,
    /// Mobile number.
    pub mobile: String,
    /// Primary organisation.
    pub organisation_id: Option<Uuid>,
    /// Further organisations.
    pub secondary_organisation_ids: Vec<Uuid>,
    /// Free label.
    pub customer_type: String,
    /// Site-specific attributes.
    pub custom_fields: BTreeMap<String, String>,
    /// Key in another system; empty means none.
    pub external_id: String,
    /// Validity on create; `None` means valid.
    pub validity: Option<Validity>,
    /// The directory it is filed in.
    pub directory_id: Option<Uuid>,
    /// The customer source it is read from: set by the source's sync only, on create.
    pub source: Option<crate::model::SourceLink>,
}

/// The fields an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerField {
    /// `email`
    Email,
    /// `secondary_emails`
    SecondaryEmails,
    /// `login`
    Login,
    /// `first_name`
    FirstName,
    /// `last_name`
    LastName,
    /// `title`
    Title,
    /// `phone`
    Phone,
    /// `mobile`
    Mobile,
    /// `organisation_id`
    OrganisationId,
    /// `secondary_organisation_ids`
    SecondaryOrganisationIds,
    /// `type`
    Type,
    /// `custom_fields`
    CustomFields,
    /// `external_id`
    ExternalId,
    /// `directory_id`
    DirectoryId,
}

impl CustomerField {
    /// Every field an update may change, in the order of the API.
    pub const ALL: [Self; 14] = [
        Self::Email,
        Self::SecondaryEmails,
        Self::Login,
        Self::FirstName,
        Self::LastName,
        Self::Title,
        Self::Phone,
        Self::Mobile,
        Self::OrganisationId,
        Self::SecondaryOrganisationIds,
        Self::Type,
        Self::CustomFields,
        Self::ExternalId,
        Self::DirectoryId,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::SecondaryEmails => "secondary_emails",
            Self::Login => "login",
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::Title => "title",
            Self::Phone => "phone",
            Self::Mobile => "mobile",
            Self::OrganisationId => "organisation_id",
            Self::SecondaryOrganisationIds => "secondary_organisation_ids",
            Self::Type => "type",
            Self::CustomFields => "custom_fields",
            Self::ExternalId => "external_id",
            Self::DirectoryId => "directory_id",
        }
    }

    /// The fields an update mask names; every path that names no updatable field is a
    /// violation of `update_mask`, saying why.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, |path| match path {
            "validity" => {
                Some("validity is changed by DeactivateCustomer and ReactivateCustomer".into())
            }
            other => fields::output_only(other),
        })
    }
}

/// Validates `field` of `input` and writes its normal form into `customer`. Organisations
/// are only checked for form here; whether they exist and are valid needs the store.
pub(crate) fn apply(
    violations: &mut Violations,
    customer: &mut Customer,
    field: CustomerField,
    input: &CustomerInput,
) {
    use CustomerField as F;
    let name = field.name();
    match field {
        F::Email => match normalise_email(&input.email) {
            Ok(email) => customer.email = email,
            Err(problem) => violations.add(name, problem),
        },
        F::SecondaryEmails => {
            customer.secondary_emails = secondary_emails(violations, &input.secondary_emails)
        }
        F::Login => customer.login = login(violations, &input.login),
        F::FirstName => {
            customer.first_name =
                fields::single_line(violations, name, &input.first_name, 100, false)
        }
        F::LastName => {
            customer.last_name = fields::single_line(violations, name, &input.last_name, 100, false)
        }
        F::Title => customer.title = fields::single_line(violations, name, &input.title, 50, false),
        F::Phone => customer.phone = phone(violations, name, &input.phone),
        F::Mobile => customer.mobile = phone(violations, name, &input.mobile),
        F::OrganisationId => customer.organisation_id = input.organisation_id,
        F::SecondaryOrganisationIds => {
            let ids = &input.secondary_organisation_ids;
            if ids.len() > MAX_SECONDARY_ORGANISATIONS {
                violations.add(
                    name,
                    format!("must list at most {MAX_SECONDARY_ORGANISATIONS} organisations"),
                );
            }
            for (index, id) in ids.iter().enumerate() {
                if ids[..index].contains(id) {
                    violations.add(format!("{name}[{index}]"), "is listed twice");
                }
            }
            let mut sorted = ids.clone();
            sorted.sort();
            sorted.dedup();
            customer.secondary_organisation_ids = sorted;
        }
        F::Type => {
            customer.customer_type =
                fields::single_line(violations, name, &input.customer_type, 50, false)
        }
        F::CustomFields => {
            customer.custom_fields = fields::custom_fields(violations, name, &input.custom_fields)
        }
        F::ExternalId => {
            let external_id = fields::single_line(violations, name, &input.external_id, 200, false);
            customer.external_id = (!external_id.is_empty()).then_some(external_id);
        }
        F::DirectoryId => customer.directory_id = input.directory_id,
    }
}

/// Cross-field rules, checked after every field is applied: no secondary address repeats
/// the primary one, and the primary organisation is not also a secondary one.
pub(crate) fn check_consistency(violations: &mut Violations, customer: &Customer) {
    let primary = customer.email.to_lowercase();
    if let Some(index) = customer
        .secondary_emails
        .iter()
        .position(|email| email.to_lowercase() == primary)
    {
        violations.add(
            format!("secondary_emails[{index}]"),
            "repeats the primary email address",
        );
    }
    if let Some(primary) = customer.organisation_id
        && customer.secondary_organisation_ids.contains(&primary)
    {
        violations.add(
            "secondary_organisation_ids",
            "must not contain the primary organisation_id",
        );
    }
}

fn secondary_emails(violations: &mut Violations, raw: &[String]) -> Vec<String> {
    if raw.len() > MAX_SECONDARY_EMAILS {
        violations.add(
            "secondary_emails",
            format!("must list at most {MAX_SECONDARY_EMAILS} addresses"),
        );
        return Vec::new();
    }
    let mut emails: Vec<String> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let field = format!("secondary_emails[{index}]");
        match normalise_email(entry) {
            Err(problem) => violations.add(field, problem),
            Ok(email)
                if emails
                    .iter()
                    .any(|known| known.to_lowercase() == email.to_lowercase()) =>
            {
                violations.add(field, "is listed twice")
            }
            Ok(email) => emails.push(email),
        }
    }
    emails.sort_by_key(|email| email.to_lowercase());
    emails
}

fn login(violations: &mut Violations, raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    if raw.chars().count() > 100 {
        violations.add("login", "must be at most 100 characters long");
    } else if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        violations.add(
            "login",
            "must not contain white space or control characters",
        );
    }
    Some(raw.to_owned())
}

fn phone(violations: &mut Violations, field: &str, raw: &str) -> String {
    let value = raw.trim();
    if value.is_empty() {
        return String::new();
    }
    if value.chars().count() > 50 {
        violations.add(field, "must be at most 50 characters long");
    } else if !value
        .chars()
        .all(|c| c.is_ascii_digit() || " +-()/.".contains(c))
        || !value.chars().any(|c| c.is_ascii_digit())
    {
        violations.add(
            field,
            "must be a phone number: digits, spaces and + - ( ) / .",
        );
    }
    value.to_owned()
}

/// The customer's audited fields.
pub(crate) fn audit(customer: &Customer) -> Audit {
    vec![
        ("email", json!(customer.email)),
        ("secondary_emails", json!(customer.secondary_emails)),
        ("login", json!(customer.login)),
        ("first_name", json!(customer.first_name)),
        ("last_name", json!(customer.last_name)),
        ("title", json!(customer.title)),
        ("phone", json!(customer.phone)),
        ("mobile", json!(customer.mobile)),
        ("organisation_id", json!(customer.organisation_id)),
        (
            "secondary_organisation_ids",
            json!(customer.secondary_organisation_ids),
        ),
        ("type", json!(customer.customer_type)),
        ("custom_fields", json!(customer.custom_fields)),
        ("external_id", json!(customer.external_id)),
        ("validity", json!(customer.validity)),
        ("directory_id", json!(customer.directory_id)),
        (
            "source",
            json!(customer.source.as_ref().map(|link| &link.name)),
        ),
    ]
}
