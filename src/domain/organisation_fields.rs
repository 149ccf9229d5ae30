//! The field rules of organisations: what a client sends, what an update may change, and how
//! each field is checked and normalised.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    changes::Audit,
    country::normalise_country,
    email_domain::{is_free_mail, normalise_domain},
    fields::{self, Violations},
};
use crate::{
    error::Result,
    model::{Organisation, Validity},
};

/// The most email domains one organisation may list.
pub const MAX_EMAIL_DOMAINS: usize = 100;

/// The values a client sends for an organisation, before any rule is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrganisationInput {
    /// Business key.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Street and number.
    pub street: String,
    /// Postal code.
    pub zip: String,
    /// City.
    pub city: String,
    /// Country code.
    pub country: String,
    /// Web site.
    pub url: String,
    /// Free text.
    pub comment: String,
    /// Validity on create; `None` means valid.
    pub validity: Option<Validity>,
    /// Email domains as given.
    pub email_domains: Vec<String>,
    /// Assign customers by email domain.
    pub domain_assignment: bool,
    /// Key in another system; empty means none.
    pub external_id: String,
    /// Site-specific attributes.
    pub custom_fields: BTreeMap<String, String>,
    /// The SLA policy of its tickets.
    pub sla_policy_id: Option<Uuid>,
    /// The agent its tickets are routed to.
    pub default_assignee_id: Option<Uuid>,
    /// The directory it is filed in.
    pub directory_id: Option<Uuid>,
}

/// The fields an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrganisationField {
    /// `name`
    Name,
    /// `street`
    Street,
    /// `zip`
    Zip,
    /// `city`
    City,
    /// `country`
    Country,
    /// `url`
    Url,
    /// `comment`
    Comment,
    /// `email_domains`
    EmailDomains,
    /// `domain_assignment`
    DomainAssignment,
    /// `external_id`
    ExternalId,
    /// `custom_fields`
    CustomFields,
    /// `sla_policy_id`
    SlaPolicyId,
    /// `default_assignee_id`
    DefaultAssigneeId,
    /// `directory_id`
    DirectoryId,
}

impl OrganisationField {
    /// Every field an update may change, in the order of the API.
    pub const ALL: [Self; 14] = [
        Self::Name,
        Self::Street,
        Self::Zip,
        Self::City,
        Self::Country,
        Self::Url,
        Self::Comment,
        Self::EmailDomains,
        Self::DomainAssignment,
        Self::ExternalId,
        Self::CustomFields,
        Self::SlaPolicyId,
        Self::DefaultAssigneeId,
        Self::DirectoryId,
    ];

    /// The fields an import row replaces: the master data of the source system, not the
    /// helpdesk's own settings (SLA policy, default assignee), which an import leaves alone.
    pub const IMPORTED: [Self; 11] = [
        Self::Name,
        Self::Street,
        Self::Zip,
        Self::City,
        Self::Country,
        Self::Url,
        Self::Comment,
        Self::EmailDomains,
        Self::DomainAssignment,
        Self::ExternalId,
        Self::CustomFields,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Street => "street",
            Self::Zip => "zip",
            Self::City => "city",
            Self::Country => "country",
            Self::Url => "url",
            Self::Comment => "comment",
            Self::EmailDomains => "email_domains",
            Self::DomainAssignment => "domain_assignment",
            Self::ExternalId => "external_id",
            Self::CustomFields => "custom_fields",
            Self::SlaPolicyId => "sla_policy_id",
            Self::DefaultAssigneeId => "default_assignee_id",
            Self::DirectoryId => "directory_id",
        }
    }

    /// The fields an update mask names; every path that names no updatable field is a
    /// violation of `update_mask`, saying why.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, |path| match path {
            "code" => Some("code is immutable".into()),
            "validity" => Some(
                "validity is changed by DeactivateOrganisation and ReactivateOrganisation".into(),
            ),
            other => fields::output_only(other),
        })
    }
}

/// A new organisation from `input`, or every violation of its rules.
pub(crate) fn new_organisation(
    input: &OrganisationInput,
    now: jiff::Timestamp,
) -> Result<Organisation> {
    let mut violations = Violations::default();
    let code = code(&mut violations, &input.code);
    let mut org = Organisation {
        id: Uuid::now_v7(),
        code,
        name: String::new(),
        street: String::new(),
        zip: String::new(),
        city: String::new(),
        country: String::new(),
        url: String::new(),
        comment: String::new(),
        validity: input.validity.unwrap_or(Validity::Valid),
        email_domains: Vec::new(),
        domain_assignment: false,
        external_id: None,
        custom_fields: BTreeMap::new(),
        sla_policy_id: None,
        default_assignee_id: None,
        create_time: now,
        update_time: now,
        version: 1,
        directory_id: None,
    };
    for field in OrganisationField::ALL {
        apply(&mut violations, &mut org, field, input);
    }
    violations.finish()?;
    Ok(org)
}

/// The organisation's audited fields.
pub(crate) fn audit(org: &Organisation) -> Audit {
    vec![
        ("code", json!(org.code)),
        ("name", json!(org.name)),
        ("street", json!(org.street)),
        ("zip", json!(org.zip)),
        ("city", json!(org.city)),
        ("country", json!(org.country)),
        ("url", json!(org.url)),
        ("comment", json!(org.comment)),
        ("validity", json!(org.validity)),
        ("email_domains", json!(org.email_domains)),
        ("domain_assignment", json!(org.domain_assignment)),
        ("external_id", json!(org.external_id)),
        ("custom_fields", json!(org.custom_fields)),
        ("sla_policy_id", json!(org.sla_policy_id)),
        ("default_assignee_id", json!(org.default_assignee_id)),
        ("directory_id", json!(org.directory_id)),
    ]
}

pub(crate) fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// Validates `field` of `input` and writes its normal form into `org`.
pub(crate) fn apply(
    violations: &mut Violations,
    org: &mut Organisation,
    field: OrganisationField,
    input: &OrganisationInput,
) {
    use OrganisationField as F;
    let name = field.name();
    match field {
        F::Name => org.name = fields::single_line(violations, name, &input.name, 200, true),
        F::Street => org.street = fields::single_line(violations, name, &input.street, 200, false),
        F::Zip => org.zip = fields::single_line(violations, name, &input.zip, 20, false),
        F::City => org.city = fields::single_line(violations, name, &input.city, 100, false),
        F::Country => match normalise_country(&input.country) {
            Some(code) => org.country = code,
            None if input.country.trim().is_empty() => violations.add(name, "is required"),
            None => violations.add(name, "is not an ISO 3166-1 alpha-2 country code"),
        },
        F::Url => org.url = url(violations, &input.url),
        F::Comment => org.comment = fields::multi_line(violations, name, &input.comment, 10_000),
        F::EmailDomains => org.email_domains = email_domains(violations, &input.email_domains),
        F::DomainAssignment => org.domain_assignment = input.domain_assignment,
        F::ExternalId => {
            let external_id = fields::single_line(violations, name, &input.external_id, 200, false);
            org.external_id = (!external_id.is_empty()).then_some(external_id);
        }
        F::CustomFields => {
            org.custom_fields = fields::custom_fields(violations, name, &input.custom_fields)
        }
        F::SlaPolicyId => org.sla_policy_id = input.sla_policy_id,
        F::DefaultAssigneeId => org.default_assignee_id = input.default_assignee_id,
        F::DirectoryId => org.directory_id = input.directory_id,
    }
}

/// code: 1 to 100 letters, digits and `. _ - @`.
fn code(violations: &mut Violations, raw: &str) -> String {
    let length = raw.chars().count();
    if length == 0 {
        violations.add("code", "is required");
    } else if length > 100 {
        violations.add("code", "must be at most 100 characters long");
    } else if !raw
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        violations.add(
            "code",
            "may only contain letters, digits and the characters . _ - @",
        );
    }
    raw.to_owned()
}

/// url: empty, or an absolute http(s) URL with a host.
fn url(violations: &mut Violations, raw: &str) -> String {
    let value = raw.trim();
    if value.is_empty() {
        return String::new();
    }
    if value.chars().count() > 2000 {
        violations.add("url", "must be at most 2000 characters long");
        return value.to_owned();
    }
    match url::Url::parse(value) {
        Ok(parsed)
            if matches!(parsed.scheme(), "http" | "https")
                && parsed.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            value.to_owned()
        }
        _ => {
            violations.add("url", "must be an absolute http or https URL");
            value.to_owned()
        }
    }
}

/// email_domains: each a domain name, not free mail, none twice; stored sorted.
fn email_domains(violations: &mut Violations, raw: &[String]) -> Vec<String> {
    if raw.len() > MAX_EMAIL_DOMAINS {
        violations.add(
            "email_domains",
            format!("must list at most {MAX_EMAIL_DOMAINS} domains"),
        );
        return Vec::new();
    }
    let mut domains: Vec<String> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let field = format!("email_domains[{index}]");
        match normalise_domain(entry) {
            Err(problem) => violations.add(field, problem),
            Ok(domain) if is_free_mail(&domain) => violations.add(
                field,
                format!("{domain} is a free-mail domain and cannot identify an organisation"),
            ),
            Ok(domain) if domains.contains(&domain) => {
                violations.add(field, format!("{domain} is listed twice"))
            }
            Ok(domain) => domains.push(domain),
        }
    }
    domains.sort();
    domains
}
