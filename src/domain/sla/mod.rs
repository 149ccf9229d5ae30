//! SLA calendars and policies: their field rules (`calendar`, `policy`), and the [`Sla`] a
//! ticket runs under.

mod calendar;
mod policy;

use std::sync::Arc;

use jiff::tz::TimeZone;
use uuid::Uuid;

use super::{
    business_time::{BusinessHours, Hours},
    escalation::Sla,
};
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::Calendar,
    store::Store,
};

pub use calendar::{
    CalendarField, CalendarInput, ClockInput, DateInput, DayInput, MAX_HOLIDAYS, MAX_RANGES_PER_DAY,
};
pub use policy::{PolicyField, PolicyInput};

/// Why a field of a calendar or policy may not be written: it is output only.
pub(super) fn output_only(path: &str) -> Option<String> {
    matches!(path, "id" | "create_time" | "update_time" | "etag")
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
