//! Calendars: business hours per weekday, holidays and a time zone, as clients send them and
//! as the SLA maths reads them.

use std::collections::BTreeSet;

use jiff::{civil::Date, tz::TimeZone};
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
    model::{Calendar, ChangeKind, Minute, ResourceType},
    store::{Cursor, name_cursor},
};

/// The most holidays one calendar lists.
pub const MAX_HOLIDAYS: usize = 1000;
/// The most ranges one weekday has.
pub const MAX_RANGES_PER_DAY: usize = 24;
/// A time of day as a client sends it (`google.type.TimeOfDay`): business hours count in
/// whole minutes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClockInput {
    /// Hours, 0 to 23 (24 for the end of the day).
    pub hours: i32,
    /// Minutes, 0 to 59.
    pub minutes: i32,
    /// Seconds: must be 0.
    pub seconds: i32,
    /// Nanoseconds: must be 0.
    pub nanos: i32,
}

/// A calendar date as a client sends it (`google.type.Date`): all three parts are required.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DateInput {
    /// Year, 1 to 9999.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: i32,
    /// Day of the month.
    pub day: i32,
}

/// The business hours of one weekday, as a client sends them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DayInput {
    /// ISO weekday number: 1 Monday … 7 Sunday; anything else is refused.
    pub weekday: i32,
    /// `(start, end)`; a missing one is refused.
    pub ranges: Vec<(Option<ClockInput>, Option<ClockInput>)>,
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
    /// Holidays; a missing one is refused.
    pub holidays: Vec<Option<DateInput>>,
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

impl Slas {
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
        check_etag("calendar", &current.etag(), etag)?;
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
            violations.add(format!("{field}.weekday"), "is required: MONDAY to SUNDAY");
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
            let start_minute = minute(violations, &format!("{at}.start"), *start, false);
            let end_minute = minute(violations, &format!("{at}.end"), *end, true);
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

/// A time of day as minutes since midnight: whole minutes, 24:00 only where `end_of_day`
/// is allowed.
fn minute(
    violations: &mut Violations,
    field: &str,
    time: Option<ClockInput>,
    end_of_day: bool,
) -> Option<Minute> {
    let Some(time) = time else {
        violations.add(field, "is required");
        return None;
    };
    let ClockInput {
        hours,
        minutes,
        seconds,
        nanos,
    } = time;
    let whole = seconds == 0 && nanos == 0 && (0..60).contains(&minutes);
    let in_day = (0..24).contains(&hours) || (end_of_day && hours == 24 && minutes == 0);
    let parsed = (whole && in_day)
        .then(|| u16::try_from(hours * 60 + minutes).ok())
        .flatten();
    if parsed.is_none() {
        let range = if end_of_day {
            "00:01 to 24:00"
        } else {
            "00:00 to 23:59"
        };
        violations.add(field, format!("must be whole minutes from {range}"));
    }
    parsed
}

fn holidays(violations: &mut Violations, raw: &[Option<DateInput>]) -> Vec<Date> {
    if raw.len() > MAX_HOLIDAYS {
        violations.add(
            "holidays",
            format!("must list at most {MAX_HOLIDAYS} dates"),
        );
        return Vec::new();
    }
    let mut days = BTreeSet::new();
    for (index, day) in raw.iter().enumerate() {
        let date = day.and_then(|DateInput { year, month, day }| {
            let year = i16::try_from(year).ok().filter(|year| *year >= 1)?;
            Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()
        });
        match date {
            Some(date) => {
                days.insert(date);
            }
            None => violations.add(
                format!("holidays[{index}]"),
                "must be a whole date: a year from 1, a month and a day that exist",
            ),
        }
    }
    days.into_iter().collect()
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
