//! Webhooks: administrators subscribe URLs to the change feed; every matching change is
//! POSTed to them (by the server's delivery loop), signed with the subscription's secret.

use std::sync::Arc;

use uuid::Uuid;

use super::{
    access::Principal,
    changes::{self, check_etag},
    fields::Violations,
    paging::{self, Page},
    rights::Administrator,
};
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::{
        Activity, ActivityTarget, ChangeEvent, ChangeKind, Delivery, DeliveryStatus, FieldChange,
        ResourceType, Webhook, fold_case,
    },
    store::Store,
};

/// The attempts a delivery gets when the subscription does not say.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 10;
/// The most attempts a subscription may ask for.
const MAX_ATTEMPTS: i32 = 50;

/// What a client sends to create or change a webhook.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookInput {
    /// Where changes are POSTed.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// Only changes of these kinds of resources; all when empty.
    pub resource_types: Vec<ResourceType>,
    /// Only these kinds of changes; all when empty.
    pub kinds: Vec<ChangeKind>,
    /// Whether it delivers.
    pub active: bool,
    /// Attempts per delivery before it is given up; 0 for the default.
    pub max_attempts: i32,
}

/// The fields of a webhook an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookField {
    /// `url`
    Url,
    /// `description`
    Description,
    /// `resource_types`
    ResourceTypes,
    /// `kinds`
    Kinds,
    /// `active`
    Active,
    /// `max_attempts`
    MaxAttempts,
}

impl WebhookField {
    /// Every field an update may change.
    pub const ALL: [Self; 6] = [
        Self::Url,
        Self::Description,
        Self::ResourceTypes,
        Self::Kinds,
        Self::Active,
        Self::MaxAttempts,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Url => "url",
            Self::Description => "description",
            Self::ResourceTypes => "resource_types",
            Self::Kinds => "kinds",
            Self::Active => "active",
            Self::MaxAttempts => "max_attempts",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        super::fields::fields_of_mask(paths, &Self::ALL, Self::name, super::fields::output_only)
    }
}

/// Webhook subscriptions and their delivery logs.
#[derive(Clone, Debug)]
pub struct Webhooks {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Webhooks {
    /// Webhooks in `store`, timed by `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Subscribes `input.url`: it receives the changes committed from now on. Returns the
    /// webhook, whose secret is shown this once.
    pub async fn create(&self, admin: &Administrator, input: WebhookInput) -> Result<Webhook> {
        check(&input)?;
        let now = self.clock.now();
        let webhook = Webhook {
            id: Uuid::now_v7(),
            url: input.url.trim().to_owned(),
            description: input.description.trim().to_owned(),
            secret: super::access::new_secret()?,
            resource_types: input.resource_types,
            kinds: input.kinds,
            active: input.active,
            max_attempts: attempts(input.max_attempts),
            create_time: now,
            update_time: now,
            version: 1,
        };
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Webhook,
            webhook.id,
            ChangeKind::Created,
            changes::diff(None, &audit(&webhook)),
        );
        self.store.insert_webhook(&webhook, &event).await?;
        Ok(webhook)
    }

    /// Webhook `id`.
    pub async fn get(&self, _admin: &Administrator, id: Uuid) -> Result<Webhook> {
        self.store.webhook(id).await?.ok_or(Error::NotFound {
            resource: "webhook",
        })
    }

    /// A page of webhooks, by id.
    pub async fn list(
        &self,
        _admin: &Administrator,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Webhook>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&"webhooks");
        let after: Option<Uuid> = paging::decode_token(page_token, &fingerprint)?;
        let items = self.store.list_webhooks(after, limit + 1).await?;
        Ok(paging::page(items, limit, &fingerprint, |webhook| {
            webhook.id
        }))
    }

    /// Changes `fields` of webhook `id` to those of `input`.
    pub async fn update(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[WebhookField],
        input: WebhookInput,
    ) -> Result<Webhook> {
        if fields.is_empty() {
            return Err(Error::invalid("update_mask", "name the fields to change"));
        }
        let current = self.get(admin, id).await?;
        check_etag("webhook", &current.etag(), etag)?;
        let mut next = current.clone();
        for field in fields {
            match field {
                WebhookField::Url => next.url = input.url.trim().to_owned(),
                WebhookField::Description => {
                    next.description = input.description.trim().to_owned();
                }
                WebhookField::ResourceTypes => {
                    next.resource_types.clone_from(&input.resource_types)
                }
                WebhookField::Kinds => next.kinds.clone_from(&input.kinds),
                WebhookField::Active => next.active = input.active,
                WebhookField::MaxAttempts => next.max_attempts = attempts(input.max_attempts),
            }
        }
        check(&WebhookInput {
            url: next.url.clone(),
            description: next.description.clone(),
            max_attempts: next.max_attempts,
            ..WebhookInput::default()
        })?;
        let now = self.clock.now();
        next.update_time = now;
        next.version += 1;
        let changed = changes::diff(Some(&audit(&current)), &audit(&next));
        if changed.is_empty() {
            return Ok(current);
        }
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Webhook,
            id,
            ChangeKind::Updated,
            changed,
        );
        self.store
            .update_webhook(&next, current.version, &event)
            .await?;
        Ok(next)
    }

    /// Deletes webhook `id` and its delivery log.
    pub async fn delete(&self, admin: &Administrator, id: Uuid, etag: &str) -> Result<()> {
        let current = self.get(admin, id).await?;
        check_etag("webhook", &current.etag(), etag)?;
        let event = changes::event(
            admin.actor(),
            self.clock.now(),
            ResourceType::Webhook,
            id,
            ChangeKind::Deleted,
            vec![FieldChange {
                field: "url".into(),
                old: serde_json::json!(current.url),
                new: serde_json::Value::Null,
            }],
        );
        self.store.delete_webhook(id, current.version, &event).await
    }

    /// A page of webhook `id`'s deliveries in feed order, only those of `status` if given.
    pub async fn deliveries(
        &self,
        admin: &Administrator,
        id: Uuid,
        status: Option<DeliveryStatus>,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Delivery>> {
        self.get(admin, id).await?;
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("webhook_deliveries", id, status));
        let after: Option<i64> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_deliveries(id, status, after.unwrap_or(0), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, |delivery| {
            delivery.position
        }))
    }

    /// Puts dead delivery `id` back in line, due now.
    pub async fn retry(&self, _admin: &Administrator, id: Uuid) -> Result<Delivery> {
        self.store
            .retry_delivery(id, self.clock.now().as_microsecond())
            .await?
            .ok_or(Error::NotFound {
                resource: "delivery",
            })
    }
}

fn attempts(asked: i32) -> i32 {
    if asked == 0 {
        DEFAULT_MAX_ATTEMPTS
    } else {
        asked
    }
}

/// The audited fields: never the secret.
fn audit(webhook: &Webhook) -> changes::Audit {
    vec![
        ("url", serde_json::json!(webhook.url)),
        ("description", serde_json::json!(webhook.description)),
        (
            "resource_types",
            serde_json::json!(
                webhook
                    .resource_types
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
            ),
        ),
        (
            "kinds",
            serde_json::json!(webhook.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>()),
        ),
        ("active", serde_json::json!(webhook.active)),
        ("max_attempts", serde_json::json!(webhook.max_attempts)),
    ]
}

fn check(input: &WebhookInput) -> Result<()> {
    let mut violations = Violations::default();
    let url = input.url.trim();
    match url.parse::<http::Uri>() {
        _ if url.is_empty() => violations.add("url", "is required"),
        _ if url.len() > 2048 => violations.add("url", "is longer than 2048 characters"),
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.host().is_some_and(|host| !host.is_empty())
                && !uri.authority().is_some_and(|a| a.as_str().contains('@')) => {}
        _ => violations.add(
            "url",
            "is not an absolute http or https URL, e.g. https://crm.example.com/hooks/clientele",
        ),
    }
    if input.description.chars().count() > 500 {
        violations.add("description", "is longer than 500 characters");
    }
    if !(0..=MAX_ATTEMPTS).contains(&input.max_attempts) {
        violations.add(
            "max_attempts",
            format!("must be between 1 and {MAX_ATTEMPTS} (0 for {DEFAULT_MAX_ATTEMPTS})"),
        );
    }
    violations.finish()
}

/// What a client sends to create an activity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityInput {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The webhook runs are delivered to.
    pub webhook_id: Option<Uuid>,
    /// What it is run on; `None` when the client named nothing.
    pub applies_to: Option<ActivityTarget>,
    /// The customer types it is offered for.
    pub customer_types: Vec<String>,
}

impl Webhooks {
    /// Defines an activity, bound to an existing webhook.
    pub async fn create_activity(
        &self,
        admin: &Administrator,
        input: ActivityInput,
    ) -> Result<Activity> {
        let mut violations = Violations::default();
        let name = super::fields::single_line(&mut violations, "name", &input.name, 100, true);
        if input.description.chars().count() > 500 {
            violations.add("description", "is longer than 500 characters");
        }
        if input.webhook_id.is_none() {
            violations.add("webhook_id", "is required");
        }
        if input.applies_to.is_none() {
            violations.add(
                "applies_to",
                "is required: ACTIVITY_TARGET_CUSTOMER or ACTIVITY_TARGET_ORGANISATION",
            );
        }
        if input.applies_to == Some(ActivityTarget::Organisation)
            && !input.customer_types.is_empty()
        {
            violations.add("customer_types", "are for activities on customers");
        }
        // Types as the field catalogue spells them, once it has any (as a customer's type).
        let catalogue = super::catalogue::Checks::load(&self.store).await?;
        let mut types: Vec<String> = Vec::new();
        for (index, kind) in input.customer_types.iter().enumerate() {
            let field = format!("customer_types[{index}]");
            let kind = super::fields::single_line(&mut violations, &field, kind, 50, true);
            let kind = catalogue.customer_type_in(&mut violations, &field, &kind);
            if !types
                .iter()
                .any(|known| fold_case(known) == fold_case(&kind))
            {
                types.push(kind);
            }
        }
        violations.finish()?;
        let (Some(webhook_id), Some(applies_to)) = (input.webhook_id, input.applies_to) else {
            return Err(Error::invalid("webhook_id", "is required"));
        };
        if self.store.webhook(webhook_id).await?.is_none() {
            return Err(Error::invalid("webhook_id", "names no webhook"));
        }
        let now = self.clock.now();
        let activity = Activity {
            id: Uuid::now_v7(),
            name,
            description: input.description.trim().to_owned(),
            webhook_id,
            applies_to,
            customer_types: types,
            create_time: now,
            update_time: now,
            version: 1,
        };
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Activity,
            activity.id,
            ChangeKind::Created,
            changes::diff(None, &activity_audit(&activity)),
        );
        self.store.insert_activity(&activity, &event).await?;
        Ok(activity)
    }

    /// Every activity, by name; with `offered_to`, those offered for that customer.
    pub async fn activities(
        &self,
        principal: &Principal,
        offered_to: Option<Uuid>,
    ) -> Result<Vec<Activity>> {
        let activities = self.store.activities().await?;
        let Some(id) = offered_to else {
            return Ok(activities);
        };
        let customer =
            self.store
                .customer(&principal.scope(), id)
                .await?
                .ok_or(Error::NotFound {
                    resource: "customer",
                })?;
        Ok(activities
            .into_iter()
            .filter(|activity| offered(activity, &customer.customer_type))
            .collect())
    }

    /// Deletes activity `id`.
    pub async fn delete_activity(&self, admin: &Administrator, id: Uuid, etag: &str) -> Result<()> {
        let current = self.store.activity(id).await?.ok_or(Error::NotFound {
            resource: "activity",
        })?;
        check_etag("activity", &current.etag(), etag)?;
        let event = changes::event(
            admin.actor(),
            self.clock.now(),
            ResourceType::Activity,
            id,
            ChangeKind::Deleted,
            vec![FieldChange {
                field: "name".into(),
                old: serde_json::json!(current.name),
                new: serde_json::Value::Null,
            }],
        );
        self.store
            .delete_activity(id, current.version, &event)
            .await
    }

    /// Runs activity `id` on `target` (a customer or an organisation, as the activity says)
    /// for `principal`: the run is recorded in the record's history, and its webhook receives
    /// it with the record and the caller. Returns the run as recorded, with its sequence
    /// number.
    pub async fn run_activity(
        &self,
        principal: &Principal,
        id: Uuid,
        target: Uuid,
    ) -> Result<(ChangeEvent, i64)> {
        let activity = self.store.activity(id).await?.ok_or(Error::NotFound {
            resource: "activity",
        })?;
        let scope = principal.scope();
        let (resource_type, record) = match activity.applies_to {
            ActivityTarget::Customer => {
                let customer =
                    self.store
                        .customer(&scope, target)
                        .await?
                        .ok_or(Error::NotFound {
                            resource: "customer",
                        })?;
                if !offered(&activity, &customer.customer_type) {
                    return Err(refused(
                        "ACTIVITY_NOT_OFFERED",
                        &activity,
                        format!(
                            "the activity is offered for customers of type {}, not {:?}",
                            activity.customer_types.join(", "),
                            customer.customer_type
                        ),
                    ));
                }
                (
                    ResourceType::Customer,
                    record(super::customer_fields::audit(&customer)),
                )
            }
            ActivityTarget::Organisation => {
                let organisation =
                    self.store
                        .organisation(&scope, target)
                        .await?
                        .ok_or(Error::NotFound {
                            resource: "organisation",
                        })?;
                (
                    ResourceType::Organisation,
                    record(super::organisation_fields::audit(&organisation)),
                )
            }
        };
        let webhook = self.store.webhook(activity.webhook_id).await?;
        if !webhook.is_some_and(|webhook| webhook.active) {
            return Err(refused(
                "WEBHOOK_INACTIVE",
                &activity,
                "the activity's webhook is inactive or gone".into(),
            ));
        }
        let created = |field: &str, value: serde_json::Value| FieldChange {
            field: field.to_owned(),
            old: serde_json::Value::Null,
            new: value,
        };
        let event = changes::event(
            &principal.actor(),
            self.clock.now(),
            resource_type,
            target,
            ChangeKind::ActivityRun,
            vec![
                created("activity", serde_json::json!(activity.name)),
                created("activity_id", serde_json::json!(activity.id)),
                created("webhook_id", serde_json::json!(activity.webhook_id)),
                created("record", record),
            ],
        );
        let seq = self.store.record_activity_run(&event).await?;
        Ok((event, seq))
    }
}

/// Whether `activity` is offered for a customer of type `customer_type`.
fn offered(activity: &Activity, customer_type: &str) -> bool {
    activity.applies_to == ActivityTarget::Customer
        && (activity.customer_types.is_empty()
            || activity
                .customer_types
                .iter()
                .any(|kind| fold_case(kind) == fold_case(customer_type)))
}

fn refused(reason: &'static str, activity: &Activity, description: String) -> Error {
    Error::FailedPrecondition {
        reason,
        message: description.clone(),
        violations: vec![crate::error::PreconditionViolation {
            kind: reason.into(),
            subject: activity.id.to_string(),
            description,
        }],
    }
}

/// A record's audited fields as one JSON object.
fn record(audit: changes::Audit) -> serde_json::Value {
    serde_json::Value::Object(
        audit
            .into_iter()
            .map(|(field, value)| (field.to_owned(), value))
            .collect(),
    )
}

fn activity_audit(activity: &Activity) -> changes::Audit {
    vec![
        ("name", serde_json::json!(activity.name)),
        ("description", serde_json::json!(activity.description)),
        ("webhook_id", serde_json::json!(activity.webhook_id)),
        (
            "applies_to",
            serde_json::json!(activity.applies_to.as_str()),
        ),
        ("customer_types", serde_json::json!(activity.customer_types)),
    ]
}
