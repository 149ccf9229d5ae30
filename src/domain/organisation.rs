//! Organisations: the field rules of DESIGN §2, create with idempotency, update with
//! update mask and etag, deactivate and reactivate, and listing.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

pub use super::organisation_fields::{MAX_EMAIL_DOMAINS, OrganisationField, OrganisationInput};
use super::{
    changes::{self, check_etag},
    country::normalise_country,
    email_domain::normalise_domain,
    fields::{self, Violations},
    organisation_fields::{apply, audit, fold, new_organisation},
    paging::{self, Page},
    references,
    rights::MasterDataWriter,
};
use crate::domain::{access::ServiceWork, catalogue::Checks};
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::{Actor, ChangeKind, FieldChange, Organisation, RecordType, ResourceType, Validity},
    store::{
        Cursor, CustomerCascade, OrganisationFilter, OrganisationOrder, Scope, Store,
        ValidityFilter,
    },
};

/// What a list of organisations shows, as a client asks for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrganisationQuery {
    /// Substring of code, name or city.
    pub text: String,
    /// Country code, or empty.
    pub country: String,
    /// Exactly this validity.
    pub validity: Option<Validity>,
    /// Invalid ones too.
    pub include_invalid: bool,
    /// The order.
    pub order: OrganisationOrder,
    /// Last changed at or after.
    pub updated_since: Option<jiff::Timestamp>,
    /// A custom field's key and the exact value it holds.
    pub custom_field: Option<(String, String)>,
}

/// Which organisation to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganisationKey {
    /// By id.
    Id(Uuid),
    /// By code, case-insensitively.
    Code(String),
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
        let mut violations = Violations::default();
        Checks::load(&self.store).await?.custom_fields(
            &mut violations,
            RecordType::Organisation,
            &org.custom_fields,
        );
        violations.finish()?;
        self.check_references(&org, None).await?;
        super::directory::check_filing(&self.store, writer.contacts(), None, org.directory_id)
            .await?;
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
        fields::created(inserted, key.as_ref(), async |id| {
            self.get(writer.contacts(), &OrganisationKey::Id(id)).await
        })
        .await
    }

    /// Reads one organisation within `scope`, whatever its validity.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn get(&self, scope: &Scope, key: &OrganisationKey) -> Result<Organisation> {
        let found = match key {
            OrganisationKey::Id(id) => self.store.organisation(scope, *id).await?,
            OrganisationKey::Code(code) => self.store.organisation_by_code(scope, code).await?,
        };
        found.ok_or(Error::NotFound {
            resource: "organisation",
        })
    }

    /// The organisation with this code (case-insensitive), if there is one.
    pub(crate) async fn find_by_code(&self, code: &str) -> Result<Option<Organisation>> {
        self.store
            .organisation_by_code(&ServiceWork::RULE_CHECKS.master_data(), code)
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
            .get(writer.contacts(), &OrganisationKey::Id(id))
            .await?;
        check_etag("organisation", &current.etag(), etag)?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply(&mut violations, &mut next, *field, input);
        }
        if fields.contains(&OrganisationField::CustomFields) {
            Checks::load(&self.store).await?.custom_fields(
                &mut violations,
                RecordType::Organisation,
                &next.custom_fields,
            );
        }
        violations.finish()?;
        self.check_references(&next, Some(&current)).await?;
        super::directory::check_filing(
            &self.store,
            writer.contacts(),
            current.directory_id,
            next.directory_id,
        )
        .await?;
        let domains = next.email_domains.clone();
        self.save(actor, current, next, ChangeKind::Updated)
            .await
            .map_err(|e| in_request_order(e, &domains, input))
    }

    /// Makes `current` what `input` says, every imported field and the validity (for
    /// imports, where the source system is the master). `code` may differ only in case.
    pub(crate) async fn replace(
        &self,
        writer: &MasterDataWriter,
        current: Organisation,
        input: &OrganisationInput,
    ) -> Result<Organisation> {
        let actor = writer.actor();
        if fold(&input.code) != fold(&current.code) {
            return Err(Error::invalid(
                "code",
                format!(
                    "is immutable: this row matches the organisation {} by external_id",
                    current.code
                ),
            ));
        }
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in OrganisationField::IMPORTED {
            apply(&mut violations, &mut next, field, input);
        }
        Checks::load(&self.store).await?.custom_fields(
            &mut violations,
            RecordType::Organisation,
            &next.custom_fields,
        );
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
        etag: &str,
    ) -> Result<Organisation> {
        if validity.is_valid() {
            return Err(Error::invalid(
                "validity",
                "must be VALIDITY_INVALID or VALIDITY_INVALID_TEMPORARILY",
            ));
        }
        // The store refuses, inside the write, while an open ticket has the organisation, or
        // one of the customers deactivated with it, as main or additional customer.
        self.set_validity(writer, id, validity, etag, ChangeKind::Deactivated)
            .await
    }

    /// Puts organisation `id` back into use; its customers stay as they are.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn reactivate(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        etag: &str,
    ) -> Result<Organisation> {
        self.set_validity(writer, id, Validity::Valid, etag, ChangeKind::Reactivated)
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
        fields::custom_field_filter(&mut violations, query.custom_field.as_ref());
        violations.finish()?;
        let filter = OrganisationFilter {
            text: crate::model::Fragment::of(&text),
            country,
            validity: ValidityFilter::new(query.validity, query.include_invalid),
            updated_since: query.updated_since.map(|time| time.as_microsecond()),
            custom_field: query.custom_field.clone(),
        };
        let fingerprint = paging::fingerprint(&(&filter, query.order));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_organisations(scope, &filter, query.order, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, |org| {
            filter.cursor_after(query.order, org)
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
        writer: &MasterDataWriter,
        id: Uuid,
        validity: Validity,
        etag: &str,
        kind: ChangeKind,
    ) -> Result<Organisation> {
        let actor = writer.actor();
        let current = self
            .get(writer.contacts(), &OrganisationKey::Id(id))
            .await?;
        // Already so: a retry of a call that went through answers as the first did.
        if current.validity == validity {
            return Ok(current);
        }
        check_etag("organisation", &current.etag(), etag)?;
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
