//! SLA policies: the budgets for first response, update and solution, the warning threshold
//! and the calendar they count in.

use jiff::SignedDuration;
use serde_json::json;
use uuid::Uuid;

use super::{Slas, output_only};
use crate::{
    domain::{
        changes::{self, Audit, check_etag},
        fields::{self, Violations},
        paging::{self, Page},
        rights::{Administrator, StaffReader},
    },
    error::{Error, Result},
    model::{ChangeKind, ResourceType, SlaPolicy},
    store::{Cursor, name_cursor},
};

/// The longest budget a policy may set.
const MAX_BUDGET: SignedDuration = SignedDuration::from_hours(24 * 366 * 10);

/// The values a client sends for an SLA policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PolicyInput {
    /// Name.
    pub name: String,
    /// Budget of the first response.
    pub first_response: Option<SignedDuration>,
    /// Budget of an update.
    pub update: Option<SignedDuration>,
    /// Budget of the solution.
    pub solution: Option<SignedDuration>,
    /// Warning share in percent.
    pub warning_percent: i32,
    /// The calendar.
    pub calendar_id: Option<Uuid>,
}

/// The fields of a policy an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyField {
    /// `name`
    Name,
    /// `first_response_within`
    FirstResponse,
    /// `update_within`
    Update,
    /// `solution_within`
    Solution,
    /// `warning_percent`
    WarningPercent,
    /// `calendar_id`
    CalendarId,
}

impl PolicyField {
    /// Every updatable field.
    pub const ALL: [Self; 6] = [
        Self::Name,
        Self::FirstResponse,
        Self::Update,
        Self::Solution,
        Self::WarningPercent,
        Self::CalendarId,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::FirstResponse => "first_response_within",
            Self::Update => "update_within",
            Self::Solution => "solution_within",
            Self::WarningPercent => "warning_percent",
            Self::CalendarId => "calendar_id",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, output_only)
    }
}

impl Slas {
    /// Creates an SLA policy.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn create_policy(
        &self,
        admin: &Administrator,
        input: &PolicyInput,
        request_id: Option<String>,
    ) -> Result<SlaPolicy> {
        let now = self.clock.now();
        let mut policy = SlaPolicy {
            id: Uuid::now_v7(),
            name: String::new(),
            first_response: None,
            update: None,
            solution: None,
            warning_percent: 0,
            calendar_id: None,
            create_time: now,
            update_time: now,
            version: 1,
        };
        let mut violations = Violations::default();
        for field in PolicyField::ALL {
            apply_policy(&mut violations, &mut policy, field, input);
        }
        violations.finish()?;
        self.check_calendar(policy.calendar_id).await?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::SlaPolicy,
            policy.id,
            ChangeKind::Created,
            changes::diff(None, &policy_audit(&policy)),
        );
        let key = fields::idempotency_key("CreateSlaPolicy", admin.actor(), request_id, input);
        let inserted = self
            .store
            .insert_sla_policy(&policy, &event, key.as_ref())
            .await?;
        let reader = admin.reader();
        fields::created(inserted, key.as_ref(), |id| self.policy(&reader, id)).await
    }

    /// Reads SLA policy `id`.
    pub async fn policy(&self, _reader: &StaffReader, id: Uuid) -> Result<SlaPolicy> {
        self.store.sla_policy(id).await?.ok_or(Error::NotFound {
            resource: "SLA policy",
        })
    }

    /// Changes `fields` of SLA policy `id`, if `etag` is current.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn update_policy(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[PolicyField],
        input: &PolicyInput,
    ) -> Result<SlaPolicy> {
        let current = self.policy(&admin.reader(), id).await?;
        check_etag("SLA policy", &current.etag(), etag)?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply_policy(&mut violations, &mut next, *field, input);
        }
        violations.finish()?;
        if next.calendar_id != current.calendar_id {
            self.check_calendar(next.calendar_id).await?;
        }
        let changes = changes::diff(Some(&policy_audit(&current)), &policy_audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            admin.actor(),
            next.update_time,
            ResourceType::SlaPolicy,
            id,
            ChangeKind::Updated,
            changes,
        );
        self.store
            .update_sla_policy(&next, current.version, &event)
            .await?;
        Ok(next)
    }

    /// One page of SLA policies.
    pub async fn list_policies(
        &self,
        _reader: &StaffReader,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<SlaPolicy>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&"sla_policies");
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_sla_policies(cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, |p| {
            name_cursor(&p.name, p.id)
        }))
    }
}

fn apply_policy(
    violations: &mut Violations,
    policy: &mut SlaPolicy,
    field: PolicyField,
    input: &PolicyInput,
) {
    let name = field.name();
    match field {
        PolicyField::Name => {
            policy.name = fields::single_line(violations, name, &input.name, 100, true);
        }
        PolicyField::FirstResponse => {
            policy.first_response = budget(violations, name, input.first_response);
        }
        PolicyField::Update => policy.update = budget(violations, name, input.update),
        PolicyField::Solution => policy.solution = budget(violations, name, input.solution),
        PolicyField::WarningPercent => match u8::try_from(input.warning_percent) {
            Ok(percent) if percent <= 99 => policy.warning_percent = percent,
            _ => violations.add(name, "must be from 1 to 99, or 0 for no warnings"),
        },
        PolicyField::CalendarId => policy.calendar_id = input.calendar_id,
    }
}

fn budget(
    violations: &mut Violations,
    field: &str,
    raw: Option<SignedDuration>,
) -> Option<SignedDuration> {
    let budget = raw?;
    if budget <= SignedDuration::ZERO {
        violations.add(field, "must be positive (leave it unset for no deadline)");
    } else if budget.subsec_nanos() != 0 {
        violations.add(field, "must be whole seconds");
    } else if budget > MAX_BUDGET {
        violations.add(field, "must be at most 10 years");
    }
    Some(budget)
}

fn policy_audit(policy: &SlaPolicy) -> Audit {
    let seconds = |budget: Option<SignedDuration>| json!(budget.map(|d| d.as_secs()));
    vec![
        ("name", json!(policy.name)),
        ("first_response_within", seconds(policy.first_response)),
        ("update_within", seconds(policy.update)),
        ("solution_within", seconds(policy.solution)),
        ("warning_percent", json!(policy.warning_percent)),
        ("calendar_id", json!(policy.calendar_id)),
    ]
}
