//! The settings record: what may be set, and together with what.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::{
    changes::{self, Audit, check_etag},
    country::normalise_country,
    fields::{self, Violations},
    rights::Administrator,
};
use crate::{
    clock::Clock,
    error::Result,
    model::{ChangeKind, ResourceType, Settings},
    store::Store,
};

/// The values a client sends for the settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingsInput {
    /// Create organisations from unclaimed email domains.
    pub auto_create_organisations: bool,
    /// Their country.
    pub auto_create_organisation_country: String,
    /// Customers use groups by grants.
    pub customer_group_support: bool,
    /// Groups every customer has RW on for its own tickets.
    pub always_groups: Vec<Uuid>,
    /// Groups every organisation has RW on in SAME_ORGANISATION context.
    pub company_always_groups: Vec<Uuid>,
    /// The group tickets created without one go to.
    pub default_group_id: Option<Uuid>,
}

/// The settings an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsField {
    /// `auto_create_organisations`
    AutoCreateOrganisations,
    /// `auto_create_organisation_country`
    AutoCreateOrganisationCountry,
    /// `customer_group_support`
    CustomerGroupSupport,
    /// `always_groups`
    AlwaysGroups,
    /// `company_always_groups`
    CompanyAlwaysGroups,
    /// `default_group_id`
    DefaultGroupId,
}

impl SettingsField {
    /// Every setting, in the order of the API.
    pub const ALL: [Self; 6] = [
        Self::AutoCreateOrganisations,
        Self::AutoCreateOrganisationCountry,
        Self::CustomerGroupSupport,
        Self::AlwaysGroups,
        Self::CompanyAlwaysGroups,
        Self::DefaultGroupId,
    ];

    /// The setting's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::AutoCreateOrganisations => "auto_create_organisations",
            Self::AutoCreateOrganisationCountry => "auto_create_organisation_country",
            Self::CustomerGroupSupport => "customer_group_support",
            Self::AlwaysGroups => "always_groups",
            Self::CompanyAlwaysGroups => "company_always_groups",
            Self::DefaultGroupId => "default_group_id",
        }
    }

    /// The settings an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, |path| match path {
            "update_time" | "etag" => Some(format!("{path} is output only")),
            _ => None,
        })
    }
}

/// The settings rules, over the store.
#[derive(Clone, Debug)]
pub struct SettingsRules {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl SettingsRules {
    /// The rules over `store`, reading time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// The settings.
    pub async fn get(&self, _admin: &Administrator) -> Result<Settings> {
        self.store.settings().await
    }

    /// Changes `fields` to the values in `input`, if `etag` is current.
    #[tracing::instrument(skip(self, input), level = "debug", err(level = "debug"))]
    pub async fn update(
        &self,
        admin: &Administrator,
        etag: &str,
        fields: &[SettingsField],
        input: &SettingsInput,
    ) -> Result<Settings> {
        let current = self.store.settings().await?;
        check_etag("settings", &current.etag(), etag)?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            match field {
                SettingsField::AutoCreateOrganisations => {
                    next.auto_create_organisations = input.auto_create_organisations
                }
                SettingsField::AutoCreateOrganisationCountry => {
                    let raw = input.auto_create_organisation_country.trim();
                    next.auto_create_organisation_country = if raw.is_empty() {
                        String::new()
                    } else if let Some(code) = normalise_country(raw) {
                        code
                    } else {
                        violations.add(field.name(), "is not an ISO 3166-1 alpha-2 country code");
                        String::new()
                    };
                }
                SettingsField::CustomerGroupSupport => {
                    next.customer_group_support = input.customer_group_support
                }
                SettingsField::AlwaysGroups => {
                    next.always_groups = self
                        .groups(&mut violations, field.name(), &input.always_groups)
                        .await?
                }
                SettingsField::CompanyAlwaysGroups => {
                    next.company_always_groups = self
                        .groups(&mut violations, field.name(), &input.company_always_groups)
                        .await?
                }
                SettingsField::DefaultGroupId => {
                    if let Some(id) = input.default_group_id
                        && Some(id) != current.default_group_id
                    {
                        let found = self.store.groups(&[id]).await?;
                        match found.first() {
                            None => {
                                violations.add(field.name(), format!("no group has the id {id}"))
                            }
                            Some(group) if !group.validity.is_valid() => violations.add(
                                field.name(),
                                format!("group {} is invalid: it takes no tickets", group.name),
                            ),
                            Some(_) => {}
                        }
                    }
                    next.default_group_id = input.default_group_id;
                }
            }
        }
        if next.auto_create_organisations && next.auto_create_organisation_country.is_empty() {
            violations.add(
                "auto_create_organisation_country",
                "is required while auto_create_organisations is on: organisations need a country",
            );
        }
        violations.finish()?;
        let changes = changes::diff(Some(&audit(&current)), &audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            admin.actor(),
            next.update_time,
            ResourceType::Settings,
            Uuid::nil(),
            ChangeKind::Updated,
            changes,
        );
        self.store
            .update_settings(&next, current.version, &event)
            .await
    }
}

impl SettingsRules {
    /// Groups named in a setting: each must exist and be valid; stored sorted, once each.
    async fn groups(
        &self,
        violations: &mut Violations,
        field: &str,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>> {
        let found = self.store.groups(ids).await?;
        for (index, id) in ids.iter().enumerate() {
            match found.iter().find(|group| group.id == *id) {
                None => violations.add(
                    format!("{field}[{index}]"),
                    format!("no group has the id {id}"),
                ),
                Some(group) if !group.validity.is_valid() => violations.add(
                    format!("{field}[{index}]"),
                    format!("group {} is invalid", group.name),
                ),
                Some(_) => {}
            }
        }
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

fn audit(settings: &Settings) -> Audit {
    vec![
        (
            "auto_create_organisations",
            json!(settings.auto_create_organisations),
        ),
        (
            "auto_create_organisation_country",
            json!(settings.auto_create_organisation_country),
        ),
        (
            "customer_group_support",
            json!(settings.customer_group_support),
        ),
        ("always_groups", json!(settings.always_groups)),
        (
            "company_always_groups",
            json!(settings.company_always_groups),
        ),
        ("default_group_id", json!(settings.default_group_id)),
    ]
}
