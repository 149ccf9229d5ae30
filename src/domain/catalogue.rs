//! The field catalogue (OneDesk): customer types and custom-field definitions. An empty
//! catalogue checks nothing (types and custom fields stay free-form); entries make creates,
//! updates and imports of customers and organisations check what they write.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::json;
use uuid::Uuid;

use super::{
    changes::{self, Audit, check_etag},
    fields::{self, Violations},
    paging::{self, Page},
    rights::{Administrator, StaffReader},
};
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::{
        ChangeKind, CustomerType, FieldDefinition, FieldValueType, RecordType, ResourceType,
        Validity, fold_case,
    },
    store::{Catalogue, Cursor, Store, customer_type_cursor, field_definition_cursor},
};

/// The most allowed values of a choice.
pub const MAX_ALLOWED_VALUES: usize = 100;

/// The values a client sends for a customer type.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CustomerTypeInput {
    /// The value.
    pub name: String,
    /// Free text.
    pub comment: String,
    /// Validity; `None` means valid.
    pub validity: Option<Validity>,
}

/// The fields an update of a customer type may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerTypeField {
    /// `name`
    Name,
    /// `comment`
    Comment,
    /// `validity`
    Validity,
}

impl CustomerTypeField {
    /// Every updatable field.
    pub const ALL: [Self; 3] = [Self::Name, Self::Comment, Self::Validity];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Comment => "comment",
            Self::Validity => "validity",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, fields::output_only)
    }
}

/// The values a client sends for a field definition.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FieldDefinitionInput {
    /// Whose field.
    pub record_type: Option<RecordType>,
    /// The key.
    pub key: String,
    /// For forms.
    pub display_name: String,
    /// What it holds.
    pub value_type: Option<FieldValueType>,
    /// Whether every record must have it.
    pub required: bool,
    /// The values of a choice.
    pub allowed_values: Vec<String>,
    /// Free text.
    pub comment: String,
    /// Validity; `None` means valid.
    pub validity: Option<Validity>,
}

/// The fields an update of a field definition may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldDefinitionField {
    /// `display_name`
    DisplayName,
    /// `value_type`
    ValueType,
    /// `required`
    Required,
    /// `allowed_values`
    AllowedValues,
    /// `comment`
    Comment,
    /// `validity`
    Validity,
}

impl FieldDefinitionField {
    /// Every updatable field.
    pub const ALL: [Self; 6] = [
        Self::DisplayName,
        Self::ValueType,
        Self::Required,
        Self::AllowedValues,
        Self::Comment,
        Self::Validity,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::DisplayName => "display_name",
            Self::ValueType => "value_type",
            Self::Required => "required",
            Self::AllowedValues => "allowed_values",
            Self::Comment => "comment",
            Self::Validity => "validity",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, |path| match path {
            "record_type" | "key" => Some(format!("{path} is fixed once created")),
            other => fields::output_only(other),
        })
    }
}

/// The field catalogue rules, over the store.
#[derive(Clone, Debug)]
pub struct FieldCatalogue {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl FieldCatalogue {
    /// The rules over `store`, reading time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Adds a customer type.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn create_type(
        &self,
        admin: &Administrator,
        input: &CustomerTypeInput,
        request_id: Option<String>,
    ) -> Result<CustomerType> {
        let now = self.clock.now();
        let mut kind = CustomerType {
            id: Uuid::now_v7(),
            name: String::new(),
            comment: String::new(),
            validity: Validity::Valid,
            create_time: now,
            update_time: now,
            version: 1,
        };
        let mut violations = Violations::default();
        for field in CustomerTypeField::ALL {
            apply_type(&mut violations, &mut kind, field, input);
        }
        violations.finish()?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::CustomerType,
            kind.id,
            ChangeKind::Created,
            changes::diff(None, &type_audit(&kind)),
        );
        let key = fields::idempotency_key("CreateCustomerType", admin.actor(), request_id, input);
        let inserted = self
            .store
            .insert_customer_type(&kind, &event, key.as_ref())
            .await?;
        fields::created(inserted, key.as_ref(), async |id| {
            self.customer_type(id).await
        })
        .await
    }

    async fn customer_type(&self, id: Uuid) -> Result<CustomerType> {
        self.store.customer_type(id).await?.ok_or(Error::NotFound {
            resource: "customer type",
        })
    }

    /// Changes `fields` of customer type `id`, if `etag` is current.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn update_type(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[CustomerTypeField],
        input: &CustomerTypeInput,
    ) -> Result<CustomerType> {
        let current = self.customer_type(id).await?;
        check_etag("customer type", &current.etag(), etag)?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply_type(&mut violations, &mut next, *field, input);
        }
        violations.finish()?;
        let changes = changes::diff(Some(&type_audit(&current)), &type_audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            admin.actor(),
            next.update_time,
            ResourceType::CustomerType,
            id,
            ChangeKind::Updated,
            changes,
        );
        self.store
            .update_customer_type(&next, current.version, &event)
            .await
    }

    /// One page of customer types.
    pub async fn list_types(
        &self,
        _reader: &StaffReader,
        include_invalid: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<CustomerType>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("customer_types", include_invalid));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_customer_types(include_invalid, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(
            items,
            limit,
            &fingerprint,
            customer_type_cursor,
        ))
    }

    /// Defines a custom field.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn create_definition(
        &self,
        admin: &Administrator,
        input: &FieldDefinitionInput,
        request_id: Option<String>,
    ) -> Result<FieldDefinition> {
        let now = self.clock.now();
        let mut violations = Violations::default();
        let record_type = input.record_type.unwrap_or_else(|| {
            violations.add("record_type", "is required");
            RecordType::Customer
        });
        let key = if fields::custom_field_key_ok(&input.key) {
            input.key.clone()
        } else {
            violations.add(
                "key",
                "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter",
            );
            String::new()
        };
        let mut definition = FieldDefinition {
            id: Uuid::now_v7(),
            record_type,
            key,
            display_name: String::new(),
            value_type: FieldValueType::Text,
            required: false,
            allowed_values: Vec::new(),
            comment: String::new(),
            validity: Validity::Valid,
            create_time: now,
            update_time: now,
            version: 1,
        };
        for field in FieldDefinitionField::ALL {
            apply_definition(&mut violations, &mut definition, field, input);
        }
        check_choice(&mut violations, &definition);
        violations.finish()?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::FieldDefinition,
            definition.id,
            ChangeKind::Created,
            changes::diff(None, &definition_audit(&definition)),
        );
        let key =
            fields::idempotency_key("CreateFieldDefinition", admin.actor(), request_id, input);
        let inserted = self
            .store
            .insert_field_definition(&definition, &event, key.as_ref())
            .await?;
        fields::created(inserted, key.as_ref(), async |id| self.definition(id).await).await
    }

    async fn definition(&self, id: Uuid) -> Result<FieldDefinition> {
        self.store
            .field_definition(id)
            .await?
            .ok_or(Error::NotFound {
                resource: "field definition",
            })
    }

    /// Changes `fields` of field definition `id`, if `etag` is current.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn update_definition(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[FieldDefinitionField],
        input: &FieldDefinitionInput,
    ) -> Result<FieldDefinition> {
        let current = self.definition(id).await?;
        check_etag("field definition", &current.etag(), etag)?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply_definition(&mut violations, &mut next, *field, input);
        }
        check_choice(&mut violations, &next);
        violations.finish()?;
        let changes = changes::diff(Some(&definition_audit(&current)), &definition_audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            admin.actor(),
            next.update_time,
            ResourceType::FieldDefinition,
            id,
            ChangeKind::Updated,
            changes,
        );
        self.store
            .update_field_definition(&next, current.version, &event)
            .await
    }

    /// One page of field definitions, of `record_type` if given.
    pub async fn list_definitions(
        &self,
        _reader: &StaffReader,
        record_type: Option<RecordType>,
        include_invalid: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<FieldDefinition>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("field_definitions", record_type, include_invalid));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_field_definitions(record_type, include_invalid, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(
            items,
            limit,
            &fingerprint,
            field_definition_cursor,
        ))
    }
}

/// What the catalogue says of the records being written: read once per write (or import).
#[derive(Clone, Debug)]
pub(crate) struct Checks(Catalogue);

impl Checks {
    /// The catalogue as it is now.
    pub(crate) async fn load(store: &Store) -> Result<Self> {
        // Shared with the store's cache: no copy per write.
        Ok(Self(store.field_catalogue().await?))
    }

    /// A customer's `type`: free while no customer type is valid; else empty or a valid
    /// type, spelt as the catalogue spells it.
    pub(crate) fn customer_type(&self, violations: &mut Violations, value: &str) -> String {
        self.customer_type_in(violations, "type", value)
    }

    /// [`Checks::customer_type`] of a value sent as `field`.
    pub(crate) fn customer_type_in(
        &self,
        violations: &mut Violations,
        field: &str,
        value: &str,
    ) -> String {
        let types = &self.0.0;
        if types.is_empty() || value.is_empty() {
            return value.to_owned();
        }
        let wanted = fold_case(value);
        match types.iter().find(|kind| fold_case(&kind.name) == wanted) {
            Some(kind) => kind.name.clone(),
            None => {
                let mut names: Vec<&str> = types.iter().map(|k| k.name.as_str()).collect();
                names.sort_unstable();
                names.truncate(20);
                violations.add(
                    field,
                    format!(
                        "is not a customer type; the types are: {}",
                        names.join(", ")
                    ),
                );
                value.to_owned()
            }
        }
    }

    /// The `custom_fields` of a customer or organisation: free while no definition of
    /// `record_type` is valid; else defined keys only, each value of its type, every
    /// required one present.
    pub(crate) fn custom_fields(
        &self,
        violations: &mut Violations,
        record_type: RecordType,
        values: &BTreeMap<String, String>,
    ) {
        let defined: Vec<&FieldDefinition> = self
            .0
            .1
            .iter()
            .filter(|d| d.record_type == record_type)
            .collect();
        if defined.is_empty() {
            return;
        }
        let at = |key: &str| format!("custom_fields[{key:?}]");
        for (key, value) in values {
            let Some(definition) = defined.iter().find(|d| d.key == *key) else {
                violations.add(at(key), "no field definition has this key");
                continue;
            };
            if value.is_empty() {
                if definition.required {
                    violations.add(at(key), "is required");
                }
                continue;
            }
            if let Some(problem) = value_problem(definition, value) {
                violations.add(at(key), problem);
            }
        }
        for definition in defined.iter().filter(|d| d.required) {
            if !values.contains_key(&definition.key) {
                violations.add(at(&definition.key), "is required");
            }
        }
    }
}

/// What is wrong with `value` for `definition`, if anything.
fn value_problem(definition: &FieldDefinition, value: &str) -> Option<String> {
    let ok = match definition.value_type {
        FieldValueType::Text => true,
        FieldValueType::Number => is_number(value),
        FieldValueType::Boolean => matches!(value, "true" | "false"),
        FieldValueType::Date => value.len() == 10 && value.parse::<jiff::civil::Date>().is_ok(),
        FieldValueType::Choice => definition.allowed_values.iter().any(|v| v == value),
    };
    (!ok).then(|| match definition.value_type {
        FieldValueType::Text => String::new(),
        FieldValueType::Number => "must be a decimal number, such as -12.5".into(),
        FieldValueType::Boolean => "must be true or false".into(),
        FieldValueType::Date => "must be a date, YYYY-MM-DD".into(),
        FieldValueType::Choice => {
            let mut shown: Vec<&str> = definition
                .allowed_values
                .iter()
                .map(String::as_str)
                .take(20)
                .collect();
            if definition.allowed_values.len() > shown.len() {
                shown.push("…");
            }
            format!("must be one of: {}", shown.join(", "))
        }
    })
}

/// An optional minus, 1 to 30 digits, optionally a dot and 1 to 30 more.
fn is_number(value: &str) -> bool {
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "1"));
    let digits =
        |text: &str| (1..=30).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

fn apply_type(
    violations: &mut Violations,
    kind: &mut CustomerType,
    field: CustomerTypeField,
    input: &CustomerTypeInput,
) {
    let name = field.name();
    match field {
        CustomerTypeField::Name => {
            kind.name = fields::single_line(violations, name, &input.name, 50, true)
        }
        CustomerTypeField::Comment => {
            kind.comment = fields::multi_line(violations, name, &input.comment, 10_000)
        }
        CustomerTypeField::Validity => kind.validity = input.validity.unwrap_or(Validity::Valid),
    }
}

fn apply_definition(
    violations: &mut Violations,
    definition: &mut FieldDefinition,
    field: FieldDefinitionField,
    input: &FieldDefinitionInput,
) {
    let name = field.name();
    match field {
        FieldDefinitionField::DisplayName => {
            definition.display_name =
                fields::single_line(violations, name, &input.display_name, 100, false)
        }
        FieldDefinitionField::ValueType => match input.value_type {
            Some(value_type) => definition.value_type = value_type,
            None => violations.add(name, "is required"),
        },
        FieldDefinitionField::Required => definition.required = input.required,
        FieldDefinitionField::AllowedValues => {
            let mut seen = std::collections::HashSet::new();
            for (index, value) in input.allowed_values.iter().enumerate() {
                let at = format!("{name}[{index}]");
                if value.is_empty() || value.chars().count() > 200 {
                    violations.add(&at, "must be 1 to 200 characters long");
                } else if value.chars().any(char::is_control) {
                    violations.add(&at, "must not contain control characters");
                } else if !seen.insert(value) {
                    violations.add(&at, "repeats an earlier value");
                }
            }
            definition.allowed_values = input.allowed_values.clone();
        }
        FieldDefinitionField::Comment => {
            definition.comment = fields::multi_line(violations, name, &input.comment, 10_000)
        }
        FieldDefinitionField::Validity => {
            definition.validity = input.validity.unwrap_or(Validity::Valid)
        }
    }
}

/// A choice has 1 to [`MAX_ALLOWED_VALUES`] allowed values; the other types none.
fn check_choice(violations: &mut Violations, definition: &FieldDefinition) {
    let count = definition.allowed_values.len();
    match definition.value_type {
        FieldValueType::Choice if count == 0 => {
            violations.add("allowed_values", "a CHOICE field needs its values")
        }
        FieldValueType::Choice if count > MAX_ALLOWED_VALUES => violations.add(
            "allowed_values",
            format!("at most {MAX_ALLOWED_VALUES} values"),
        ),
        FieldValueType::Choice => {}
        _ if count > 0 => {
            violations.add("allowed_values", "only a CHOICE field has allowed values")
        }
        _ => {}
    }
}

fn type_audit(kind: &CustomerType) -> Audit {
    vec![
        ("name", json!(kind.name)),
        ("comment", json!(kind.comment)),
        ("validity", json!(kind.validity)),
    ]
}

fn definition_audit(definition: &FieldDefinition) -> Audit {
    vec![
        ("record_type", json!(definition.record_type)),
        ("key", json!(definition.key)),
        ("display_name", json!(definition.display_name)),
        ("value_type", json!(definition.value_type)),
        ("required", json!(definition.required)),
        ("allowed_values", json!(definition.allowed_values)),
        ("comment", json!(definition.comment)),
        ("validity", json!(definition.validity)),
    ]
}

#[cfg(test)]
mod tests {
    use super::is_number;

    #[test]
    fn numbers_are_plain_decimals() {
        for good in ["0", "-12.5", "42", "3.14159", "007"] {
            assert!(is_number(good), "{good}");
        }
        for bad in [
            "", "-", "1.", ".5", "1e3", "+1", "1,5", " 1", "--1", "1.2.3", "NaN",
        ] {
            assert!(!is_number(bad), "{bad:?}");
        }
    }
}
