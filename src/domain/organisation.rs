//! Organisations: the field rules of DESIGN §2, create with idempotency, update with
//! update mask and etag, deactivate and reactivate, and listing.

use std::{collections::BTreeMap, sync::Arc};

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    changes::{self, Audit, Etag, check_etag},
    country::normalise_country,
    email_domain::{is_free_mail, normalise_domain},
    fields::{self, Violations},
    paging::{self, Page},
    references,
    rights::MasterDataWriter,
};
use crate::domain::access::ServiceWork;
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::{Actor, ChangeKind, FieldChange, Organisation, ResourceType, Validity},
    store::{
        Cursor, CustomerCascade, Inserted, OrganisationFilter, OrganisationOrder, Scope, Store,
        ValidityFilter,
    },
};

/// The most email domains one organisation may list.
pub const MAX_EMAIL_DOMAINS: usize = 100;

/// The values a client sends for an organisation, before any rule is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrganisationInput {
    /// Business key.
    pub customer_id: String,
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
}

impl OrganisationField {
    /// Every field an update may change, in the order of the API.
    pub const ALL: [Self; 13] = [
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
        }
    }

    /// The fields an update mask names; every path that names no updatable field is a
    /// violation of `update_mask`, saying why.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, |path| match path {
            "customer_id" => Some("customer_id is immutable".into()),
            "validity" => Some(
                "validity is changed by DeactivateOrganisation and ReactivateOrganisation".into(),
            ),
            "id" | "create_time" | "update_time" | "etag" => Some(format!("{path} is output only")),
            _ => None,
        })
    }
}

/// What a list of organisations shows, as a client asks for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrganisationQuery {
    /// Substring of customer_id, name or city.
    pub text: String,
    /// Country code, or empty.
    pub country: String,
    /// Exactly this validity.
    pub validity: Option<Validity>,
    /// Invalid ones too.
    pub include_invalid: bool,
    /// The order.
    pub order: OrganisationOrder,
}

/// Which organisation to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganisationKey {
    /// By id.
    Id(Uuid),
    /// By customer_id, case-insensitively.
    CustomerId(String),
}

/// The organisation rules, over the store.
#[derive(Clone, Debug)]
pub struct Organisations {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Organisations {
    /// The rules over `store`, reading time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Creates an organisation; with `request_id`, a retry returns the first result.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"))]
    pub async fn create(
        &self,
        writer: &MasterDataWriter,
        input: OrganisationInput,
        request_id: Option<String>,
    ) -> Result<Organisation> {
        let actor = writer.actor();
        let now = self.clock.now();
        let org = new_organisation(&input, now)?;
        self.check_references(&org, None).await?;
        let key = fields::idempotency_key("CreateOrganisation", actor, request_id, &input);
        let event = changes::event(
            actor,
            now,
            ResourceType::Organisation,
            org.id,
            ChangeKind::Created,
            changes::diff(None, &audit(&org)),
        );
        let inserted = self
            .store
            .insert_organisation(&org, &event, key.as_ref())
            .await
            .map_err(|e| in_request_order(e, &org.email_domains, &input))?;
        match inserted {
            Inserted::New(org) => Ok(org),
            Inserted::Replay {
                resource_id,
                request_hash,
            } => {
                if key.is_none_or(|key| key.request_hash != request_hash) {
                    return Err(Error::RequestIdReused);
                }
                self.get(
                    &ServiceWork::RULE_CHECKS.master_data(),
                    &OrganisationKey::Id(resource_id),
                )
                .await
            }
        }
    }

    /// Reads one organisation within `scope`, whatever its validity.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn get(&self, scope: &Scope, key: &OrganisationKey) -> Result<Organisation> {
        let found = match key {
            OrganisationKey::Id(id) => self.store.organisation(scope, *id).await?,
            OrganisationKey::CustomerId(customer_id) => {
                self.store
                    .organisation_by_customer_id(scope, customer_id)
                    .await?
            }
        };
        found.ok_or(Error::NotFound {
            resource: "organisation",
        })
    }

    /// The organisation with this customer_id (case-insensitive), if there is one.
    pub(crate) async fn find_by_customer_id(
        &self,
        customer_id: &str,
    ) -> Result<Option<Organisation>> {
        self.store
            .organisation_by_customer_id(&ServiceWork::RULE_CHECKS.master_data(), customer_id)
            .await
    }

    /// The organisation with this external id, if there is one.
    pub(crate) async fn find_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Organisation>> {
        self.store.organisation_by_external_id(external_id).await
    }

    /// Changes `fields` of organisation `id` to the values in `input`, if `etag` is current.
    /// A change that changes nothing writes nothing.
    #[tracing::instrument(skip(self, input), level = "debug", err(level = "debug"))]
    pub async fn update(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        etag: &str,
        fields: &[OrganisationField],
        input: &OrganisationInput,
    ) -> Result<Organisation> {
        let actor = writer.actor();
        let current = self
            .get(
                &ServiceWork::RULE_CHECKS.master_data(),
                &OrganisationKey::Id(id),
            )
            .await?;
        check_etag("organisation", &current.etag(), Etag::Required(etag))?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply(&mut violations, &mut next, *field, input);
        }
        violations.finish()?;
        self.check_references(&next, Some(&current)).await?;
        let domains = next.email_domains.clone();
        self.save(actor, current, next, ChangeKind::Updated)
            .await
            .map_err(|e| in_request_order(e, &domains, input))
    }

    /// Makes `current` what `input` says, every imported field and the validity (for
    /// imports, where the source system is the master). `customer_id` may differ only in case.
    pub(crate) async fn replace(
        &self,
        writer: &MasterDataWriter,
        current: Organisation,
        input: &OrganisationInput,
    ) -> Result<Organisation> {
        let actor = writer.actor();
        if fold(&input.customer_id) != fold(&current.customer_id) {
            return Err(Error::invalid(
                "customer_id",
                format!(
                    "is immutable: this row matches the organisation {} by external_id",
                    current.customer_id
                ),
            ));
        }
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in OrganisationField::IMPORTED {
            apply(&mut violations, &mut next, field, input);
        }
        violations.finish()?;
        next.validity = input.validity.unwrap_or(Validity::Valid);
        let kind = match (current.validity.is_valid(), next.validity.is_valid()) {
            (true, false) => ChangeKind::Deactivated,
            (false, true) => ChangeKind::Reactivated,
            _ => ChangeKind::Updated,
        };
        let domains = next.email_domains.clone();
        self.save(actor, current, next, kind)
            .await
            .map_err(|e| in_request_order(e, &domains, input))
    }

    /// Takes organisation `id` out of use with `validity` (invalid or temporarily invalid),
    /// and its valid customers with it.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn deactivate(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        validity: Validity,
        etag: Option<&str>,
    ) -> Result<Organisation> {
        let actor = writer.actor();
        if validity.is_valid() {
            return Err(Error::invalid(
                "validity",
                "must be VALIDITY_INVALID or VALIDITY_INVALID_TEMPORARILY",
            ));
        }
        // The store refuses, inside the write, while an open ticket has the organisation, or
        // one of the customers deactivated with it, as main or additional customer.
        self.set_validity(actor, id, validity, etag, ChangeKind::Deactivated)
            .await
    }

    /// Puts organisation `id` back into use; its customers stay as they are.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn reactivate(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        etag: Option<&str>,
    ) -> Result<Organisation> {
        let actor = writer.actor();
        self.set_validity(actor, id, Validity::Valid, etag, ChangeKind::Reactivated)
            .await
    }

    /// One page of organisations.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list(
        &self,
        scope: &Scope,
        query: &OrganisationQuery,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Organisation>> {
        let limit = paging::page_size(page_size)?;
        let mut violations = Violations::default();
        let text = fields::single_line(&mut violations, "text", &query.text, 200, false);
        let country = if query.country.trim().is_empty() {
            None
        } else {
            let code = normalise_country(&query.country);
            if code.is_none() {
                violations.add("country", "is not an ISO 3166-1 alpha-2 country code");
            }
            code
        };
        violations.finish()?;
        let filter = OrganisationFilter {
            text: (!text.is_empty()).then_some(text),
            country,
            validity: ValidityFilter::new(query.validity, query.include_invalid),
        };
        let fingerprint = paging::fingerprint(&(&filter, query.order));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_organisations(scope, &filter, query.order, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, |org| {
            query.order.cursor_after(org)
        }))
    }

    /// A newly named default assignee must be a valid agent, a newly named SLA policy must
    /// exist.
    async fn check_references(
        &self,
        next: &Organisation,
        current: Option<&Organisation>,
    ) -> Result<()> {
        references::check_changed(
            &self.store,
            (
                "default_assignee_id",
                current.and_then(|c| c.default_assignee_id),
                next.default_assignee_id,
            ),
            (
                "sla_policy_id",
                current.and_then(|c| c.sla_policy_id),
                next.sla_policy_id,
            ),
        )
        .await
    }

    async fn set_validity(
        &self,
        actor: &Actor,
        id: Uuid,
        validity: Validity,
        etag: Option<&str>,
        kind: ChangeKind,
    ) -> Result<Organisation> {
        let current = self
            .get(
                &ServiceWork::RULE_CHECKS.master_data(),
                &OrganisationKey::Id(id),
            )
            .await?;
        check_etag("organisation", &current.etag(), Etag::Optional(etag))?;
        let mut next = current.clone();
        next.validity = validity;
        self.save(actor, current, next, kind).await
    }

    /// Stores `next` over `current` with an event of `kind`, unless nothing changed. An
    /// organisation leaving validity takes its valid customers along.
    async fn save(
        &self,
        actor: &Actor,
        current: Organisation,
        mut next: Organisation,
        kind: ChangeKind,
    ) -> Result<Organisation> {
        let changes = changes::diff(Some(&audit(&current)), &audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            actor,
            next.update_time,
            ResourceType::Organisation,
            next.id,
            kind,
            changes,
        );
        let cascade =
            (current.validity.is_valid() && !next.validity.is_valid()).then(|| CustomerCascade {
                validity: next.validity,
                event: changes::event(
                    actor,
                    next.update_time,
                    ResourceType::Customer,
                    Uuid::nil(),
                    ChangeKind::Deactivated,
                    vec![FieldChange {
                        field: "validity".into(),
                        old: json!(Validity::Valid),
                        new: json!(next.validity),
                    }],
                ),
            });
        self.store
            .update_organisation(&next, current.version, &event, cascade.as_ref())
            .await
    }
}

/// A new organisation from `input`, or every violation of its rules.
pub(crate) fn new_organisation(
    input: &OrganisationInput,
    now: jiff::Timestamp,
) -> Result<Organisation> {
    let mut violations = Violations::default();
    let customer_id = customer_id(&mut violations, &input.customer_id);
    let mut org = Organisation {
        id: Uuid::now_v7(),
        customer_id,
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
        ("customer_id", json!(org.customer_id)),
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
    ]
}

fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// Validates `field` of `input` and writes its normal form into `org`.
fn apply(
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
    }
}

/// customer_id: 1 to 100 letters, digits and `. _ - @`.
fn customer_id(violations: &mut Violations, raw: &str) -> String {
    let length = raw.chars().count();
    if length == 0 {
        violations.add("customer_id", "is required");
    } else if length > 100 {
        violations.add("customer_id", "must be at most 100 characters long");
    } else if !raw
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        violations.add(
            "customer_id",
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

/// The store names a taken email domain by its place in the stored, sorted list; the client
/// knows it by its place in the request.
fn in_request_order(error: Error, stored: &[String], input: &OrganisationInput) -> Error {
    let Error::AlreadyExists {
        resource,
        field,
        reason,
    } = error
    else {
        return error;
    };
    let position = field
        .strip_prefix("email_domains[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|index| index.parse::<usize>().ok())
        .and_then(|index| stored.get(index))
        .and_then(|taken| {
            input
                .email_domains
                .iter()
                .position(|raw| normalise_domain(raw).as_deref() == Ok(taken.as_str()))
        });
    Error::AlreadyExists {
        resource,
        field: position.map_or(field, |position| format!("email_domains[{position}]")),
        reason,
    }
}
