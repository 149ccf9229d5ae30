//! SLA calendars and policies: their field rules, and the [`Sla`] a ticket runs under.

use std::{collections::BTreeSet, sync::Arc};

use jiff::{SignedDuration, civil::Date, tz::TimeZone};
use serde_json::json;
use uuid::Uuid;

use super::{
    business_time::{BusinessHours, Hours},
    changes::{self, Audit, Etag, check_etag},
    escalation::Sla,
    fields::{self, Violations},
    paging::{self, Page},
    rights::{Administrator, StaffReader},
};
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::{Calendar, ChangeKind, Minute, ResourceType, SlaPolicy},
    store::{Cursor, Store, name_cursor},
};

/// The most holidays one calendar lists.
pub const MAX_HOLIDAYS: usize = 1000;
/// The most ranges one weekday has.
pub const MAX_RANGES_PER_DAY: usize = 24;
/// The longest budget a policy may set.
const MAX_BUDGET: SignedDuration = SignedDuration::from_hours(24 * 366 * 10);

/// The business hours of one weekday, as a client sends them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DayInput {
    /// ISO weekday number: 1 Monday … 7 Sunday; anything else is refused.
    pub weekday: i32,
    /// `(start, end)` as `HH:MM`.
    pub ranges: Vec<(String, String)>,
}

/// The values a client sends for a calendar.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CalendarInput {
    /// Name.
    pub name: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Business hours per weekday.
    pub hours: Vec<DayInput>,
    /// Holidays as `YYYY-MM-DD`.
    pub holidays: Vec<String>,
}

/// The fields of a calendar an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarField {
    /// `name`
    Name,
    /// `time_zone`
    TimeZone,
    /// `hours`
    Hours,
    /// `holidays`
    Holidays,
}

impl CalendarField {
    /// Every updatable field.
    pub const ALL: [Self; 4] = [Self::Name, Self::TimeZone, Self::Hours, Self::Holidays];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::TimeZone => "time_zone",
            Self::Hours => "hours",
            Self::Holidays => "holidays",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, output_only)
    }
}

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
    /// `first_response_time`
    FirstResponse,
    /// `update_time`
    Update,
    /// `solution_time`
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
            Self::FirstResponse => "first_response_time",
            Self::Update => "update_time",
            Self::Solution => "solution_time",
            Self::WarningPercent => "warning_percent",
            Self::CalendarId => "calendar_id",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, output_only)
    }
}

fn output_only(path: &str) -> Option<String> {
    matches!(
        path,
        "id" | "create_time" | "change_time" | "update_time" | "etag"
    )
    .then(|| format!("{path} is output only"))
}

/// The rules of calendars and SLA policies, over the store.
#[derive(Clone, Debug)]
pub struct Slas {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Slas {
    /// The rules over `store`, reading time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Creates a calendar.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn create_calendar(
        &self,
        admin: &Administrator,
        input: &CalendarInput,
        request_id: Option<String>,
    ) -> Result<Calendar> {
        let now = self.clock.now();
        let mut calendar = Calendar {
            id: Uuid::now_v7(),
            name: String::new(),
            time_zone: String::new(),
            week: Default::default(),
            holidays: Vec::new(),
            create_time: now,
            update_time: now,
            version: 1,
        };
        let mut violations = Violations::default();
        for field in CalendarField::ALL {
            apply_calendar(&mut violations, &mut calendar, field, input);
        }
        violations.finish()?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Calendar,
            calendar.id,
            ChangeKind::Created,
            changes::diff(None, &calendar_audit(&calendar)),
        );
        let key = fields::idempotency_key("CreateCalendar", admin.actor(), request_id, input);
        let inserted = self
            .store
            .insert_calendar(&calendar, &event, key.as_ref())
            .await?;
        let reader = admin.reader();
        fields::created(inserted, key.as_ref(), |id| self.calendar(&reader, id)).await
    }

    /// Reads calendar `id`.
    pub async fn calendar(&self, _reader: &StaffReader, id: Uuid) -> Result<Calendar> {
        self.store.calendar(id).await?.ok_or(Error::NotFound {
            resource: "calendar",
        })
    }

    /// Changes `fields` of calendar `id`, if `etag` is current.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn update_calendar(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[CalendarField],
        input: &CalendarInput,
    ) -> Result<Calendar> {
        let current = self.calendar(&admin.reader(), id).await?;
        check_etag("calendar", &current.etag(), Etag::Required(etag))?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply_calendar(&mut violations, &mut next, *field, input);
        }
        violations.finish()?;
        let changes = changes::diff(Some(&calendar_audit(&current)), &calendar_audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            admin.actor(),
            next.update_time,
            ResourceType::Calendar,
            id,
            ChangeKind::Updated,
            changes,
        );
        self.store
            .update_calendar(&next, current.version, &event)
            .await?;
        Ok(next)
    }

    /// One page of calendars.
    pub async fn list_calendars(
        &self,
        _reader: &StaffReader,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Calendar>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&"calendars");
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_calendars(cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, |c| {
            name_cursor(&c.name, c.id)
        }))
    }

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
        check_etag("SLA policy", &current.etag(), Etag::Required(etag))?;
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

    /// The SLA of policy `id` (none: no deadlines) with its calendar's hours.
    pub(crate) async fn sla(&self, id: Option<Uuid>) -> Result<Sla> {
        let Some(id) = id else {
            return Ok(Sla::none());
        };
        let Some(policy) = self.store.sla_policy(id).await? else {
            // A policy is never deleted; a missing one means no deadlines rather than a
            // ticket that can no longer be changed.
            tracing::warn!(%id, "a ticket names an SLA policy that does not exist");
            return Ok(Sla::none());
        };
        let hours = match policy.calendar_id {
            None => Hours::Always,
            Some(calendar_id) => match self.store.calendar(calendar_id).await? {
                Some(calendar) => business_hours(&calendar)?,
                None => Hours::Always,
            },
        };
        Ok(Sla {
            policy: Some(policy),
            hours,
        })
    }

    async fn check_calendar(&self, id: Option<Uuid>) -> Result<()> {
        let Some(id) = id else { return Ok(()) };
        match self.store.calendar(id).await? {
            Some(_) => Ok(()),
            None => Err(Error::invalid(
                "calendar_id",
                format!("no calendar has the id {id}"),
            )),
        }
    }
}

/// The business hours a stored calendar describes.
pub(crate) fn business_hours(calendar: &Calendar) -> Result<Hours> {
    let zone = TimeZone::get(&calendar.time_zone).map_err(|e| {
        Error::Internal(format!(
            "calendar {} names an unknown time zone: {e}",
            calendar.id
        ))
    })?;
    Ok(Hours::Calendar(BusinessHours::new(
        zone,
        calendar.week.clone(),
        calendar.holidays.iter().copied().collect(),
    )))
}

fn apply_calendar(
    violations: &mut Violations,
    calendar: &mut Calendar,
    field: CalendarField,
    input: &CalendarInput,
) {
    let name = field.name();
    match field {
        CalendarField::Name => {
            calendar.name = fields::single_line(violations, name, &input.name, 100, true);
        }
        CalendarField::TimeZone => {
            let zone = input.time_zone.trim();
            if zone.is_empty() {
                violations.add(name, "is required: an IANA time zone such as Europe/Berlin");
            } else if TimeZone::get(zone).is_err() {
                violations.add(name, format!("{zone:?} is not an IANA time zone"));
            }
            calendar.time_zone = zone.to_owned();
        }
        CalendarField::Hours => calendar.week = week(violations, &input.hours),
        CalendarField::Holidays => calendar.holidays = holidays(violations, &input.holidays),
    }
}

/// The weekly hours: each weekday once, ranges within the day, not overlapping, at least one.
fn week(violations: &mut Violations, days: &[DayInput]) -> [Vec<(Minute, Minute)>; 7] {
    let mut week: [Vec<(Minute, Minute)>; 7] = Default::default();
    let mut seen = [false; 7];
    for (index, day) in days.iter().enumerate() {
        let field = format!("hours[{index}]");
        let Some(slot) = usize::try_from(day.weekday)
            .ok()
            .filter(|n| (1..=7).contains(n))
            .map(|n| n - 1)
        else {
            violations.add(
                format!("{field}.weekday"),
                "is required: WEEKDAY_MONDAY to WEEKDAY_SUNDAY",
            );
            continue;
        };
        if std::mem::replace(&mut seen[slot], true) {
            violations.add(
                format!("{field}.weekday"),
                "names a weekday that is listed before",
            );
            continue;
        }
        if day.ranges.len() > MAX_RANGES_PER_DAY {
            violations.add(
                format!("{field}.ranges"),
                format!("must list at most {MAX_RANGES_PER_DAY} ranges"),
            );
            continue;
        }
        let mut ranges = Vec::with_capacity(day.ranges.len());
        for (r, (start, end)) in day.ranges.iter().enumerate() {
            let at = format!("{field}.ranges[{r}]");
            let start_minute = minute(violations, &format!("{at}.start"), start, false);
            let end_minute = minute(violations, &format!("{at}.end"), end, true);
            if let (Some(start), Some(end)) = (start_minute, end_minute) {
                if start >= end {
                    violations.add(format!("{at}.end"), "must be after start");
                } else {
                    ranges.push((start, end, r));
                }
            }
        }
        ranges.sort();
        for pair in ranges.windows(2) {
            let ((_, end, _), (start, _, r)) = (pair[0], pair[1]);
            if start < end {
                violations.add(
                    format!("{field}.ranges[{r}]"),
                    "overlaps another range of the same day",
                );
            }
        }
        week[slot] = ranges.into_iter().map(|(s, e, _)| (s, e)).collect();
    }
    if week.iter().all(Vec::is_empty) && !violations.has_any() {
        violations.add(
            "hours",
            "must give at least one range of business hours (a policy without a calendar runs 24×7)",
        );
    }
    week
}

/// `HH:MM` as minutes since midnight; `24:00` only where `end_of_day` is allowed.
fn minute(violations: &mut Violations, field: &str, raw: &str, end_of_day: bool) -> Option<Minute> {
    let parsed = raw.trim().split_once(':').and_then(|(h, m)| {
        let valid = h.len() == 2 && m.len() == 2;
        let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
        (valid && m < 60 && (h < 24 || (end_of_day && h == 24 && m == 0))).then_some(h * 60 + m)
    });
    if parsed.is_none() {
        let range = if end_of_day {
            "00:01 to 24:00"
        } else {
            "00:00 to 23:59"
        };
        violations.add(field, format!("must be a time HH:MM from {range}"));
    }
    parsed
}

fn holidays(violations: &mut Violations, raw: &[String]) -> Vec<Date> {
    if raw.len() > MAX_HOLIDAYS {
        violations.add(
            "holidays",
            format!("must list at most {MAX_HOLIDAYS} dates"),
        );
        return Vec::new();
    }
    let mut days = BTreeSet::new();
    for (index, day) in raw.iter().enumerate() {
        let text = day.trim();
        match text.parse::<Date>() {
            Ok(date) if text.len() == 10 => {
                days.insert(date);
            }
            _ => violations.add(format!("holidays[{index}]"), "must be a date YYYY-MM-DD"),
        }
    }
    days.into_iter().collect()
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

fn calendar_audit(calendar: &Calendar) -> Audit {
    vec![
        ("name", json!(calendar.name)),
        ("time_zone", json!(calendar.time_zone)),
        ("hours", json!(calendar.week)),
        (
            "holidays",
            json!(
                calendar
                    .holidays
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ),
        ),
    ]
}

fn policy_audit(policy: &SlaPolicy) -> Audit {
    let seconds = |budget: Option<SignedDuration>| json!(budget.map(|d| d.as_secs()));
    vec![
        ("name", json!(policy.name)),
        ("first_response_time", seconds(policy.first_response)),
        ("update_time", seconds(policy.update)),
        ("solution_time", seconds(policy.solution)),
        ("warning_percent", json!(policy.warning_percent)),
        ("calendar_id", json!(policy.calendar_id)),
    ]
}
