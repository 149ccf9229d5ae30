//! `clientele.v1.SlaService`.

use jiff::SignedDuration;
use tonic::{Request, Response, Status};

use super::{admin, optional_id, parse_id, parse_optional_id, staff, timestamp};
use crate::{
    domain::{
        Slas,
        sla::{
            CalendarField, CalendarInput, ClockInput, DateInput, DayInput, PolicyField, PolicyInput,
        },
    },
    error::{Error, Result},
    model::{Calendar, SlaPolicy},
    proto::google::r#type::{Date as GoogleDate, TimeOfDay},
    proto::v1::{self as pb, sla_service_server::SlaService},
};

/// The gRPC face of [`Slas`].
#[derive(Clone, Debug)]
pub struct SlaApi {
    slas: Slas,
}

impl SlaApi {
    /// Serves `slas`.
    pub fn new(slas: Slas) -> Self {
        Self { slas }
    }
}

#[tonic::async_trait]
impl SlaService for SlaApi {
    async fn create_calendar(
        &self,
        request: Request<pb::CreateCalendarRequest>,
    ) -> Result<Response<pb::CreateCalendarResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let request_id = crate::domain::fields::request_id(&request.request_id)?;
        let input = calendar_input(request.calendar.unwrap_or_default());
        let calendar = self
            .slas
            .create_calendar(&admin, &input, request_id)
            .await
            .map_err(|e| e.within("calendar"))?;
        Ok(Response::new(pb::CreateCalendarResponse {
            calendar: Some(calendar_to_proto(calendar)),
        }))
    }

    async fn get_calendar(
        &self,
        request: Request<pb::GetCalendarRequest>,
    ) -> Result<Response<pb::GetCalendarResponse>, Status> {
        let reader = staff(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let calendar = self.slas.calendar(&reader, id).await?;
        Ok(Response::new(pb::GetCalendarResponse {
            calendar: Some(calendar_to_proto(calendar)),
        }))
    }

    async fn update_calendar(
        &self,
        request: Request<pb::UpdateCalendarRequest>,
    ) -> Result<Response<pb::UpdateCalendarResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields = CalendarField::from_mask(&mask(request.update_mask))?;
        let calendar = request.calendar.unwrap_or_default();
        let id = parse_id("calendar.id", &calendar.id)?;
        let etag = calendar.etag.clone();
        let input = calendar_input(calendar);
        let calendar = self
            .slas
            .update_calendar(&admin, id, &etag, &fields, &input)
            .await
            .map_err(|e| e.within("calendar"))?;
        Ok(Response::new(pb::UpdateCalendarResponse {
            calendar: Some(calendar_to_proto(calendar)),
        }))
    }

    async fn list_calendars(
        &self,
        request: Request<pb::ListCalendarsRequest>,
    ) -> Result<Response<pb::ListCalendarsResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let page = self
            .slas
            .list_calendars(&reader, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListCalendarsResponse {
            calendars: page.items.into_iter().map(calendar_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_sla_policy(
        &self,
        request: Request<pb::CreateSlaPolicyRequest>,
    ) -> Result<Response<pb::CreateSlaPolicyResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let request_id = crate::domain::fields::request_id(&request.request_id)?;
        let input = policy_input(request.sla_policy.unwrap_or_default())
            .map_err(|e| e.within("sla_policy"))?;
        let policy = self
            .slas
            .create_policy(&admin, &input, request_id)
            .await
            .map_err(|e| e.within("sla_policy"))?;
        Ok(Response::new(pb::CreateSlaPolicyResponse {
            sla_policy: Some(policy_to_proto(policy)),
        }))
    }

    async fn get_sla_policy(
        &self,
        request: Request<pb::GetSlaPolicyRequest>,
    ) -> Result<Response<pb::GetSlaPolicyResponse>, Status> {
        let reader = staff(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let policy = self.slas.policy(&reader, id).await?;
        Ok(Response::new(pb::GetSlaPolicyResponse {
            sla_policy: Some(policy_to_proto(policy)),
        }))
    }

    async fn update_sla_policy(
        &self,
        request: Request<pb::UpdateSlaPolicyRequest>,
    ) -> Result<Response<pb::UpdateSlaPolicyResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields = PolicyField::from_mask(&mask(request.update_mask))?;
        let policy = request.sla_policy.unwrap_or_default();
        let id = parse_id("sla_policy.id", &policy.id)?;
        let etag = policy.etag.clone();
        let input = policy_input(policy).map_err(|e| e.within("sla_policy"))?;
        let policy = self
            .slas
            .update_policy(&admin, id, &etag, &fields, &input)
            .await
            .map_err(|e| e.within("sla_policy"))?;
        Ok(Response::new(pb::UpdateSlaPolicyResponse {
            sla_policy: Some(policy_to_proto(policy)),
        }))
    }

    async fn list_sla_policies(
        &self,
        request: Request<pb::ListSlaPoliciesRequest>,
    ) -> Result<Response<pb::ListSlaPoliciesResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let page = self
            .slas
            .list_policies(&reader, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListSlaPoliciesResponse {
            sla_policies: page.items.into_iter().map(policy_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

fn mask(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|mask| mask.paths).unwrap_or_default()
}

fn calendar_input(calendar: pb::Calendar) -> CalendarInput {
    let clock = |time: Option<TimeOfDay>| {
        time.map(|t| ClockInput {
            hours: t.hours,
            minutes: t.minutes,
            seconds: t.seconds,
            nanos: t.nanos,
        })
    };
    CalendarInput {
        name: calendar.name,
        time_zone: calendar.time_zone,
        hours: calendar
            .hours
            .into_iter()
            .map(|day| DayInput {
                // google.type.DayOfWeek numbers weekdays as ISO does: 1 Monday … 7 Sunday.
                weekday: day.weekday,
                ranges: day
                    .ranges
                    .into_iter()
                    .map(|r| (clock(r.start), clock(r.end)))
                    .collect(),
            })
            .collect(),
        holidays: calendar
            .holidays
            .into_iter()
            .map(|d| {
                Some(DateInput {
                    year: d.year,
                    month: d.month,
                    day: d.day,
                })
            })
            .collect(),
    }
}

fn calendar_to_proto(calendar: Calendar) -> pb::Calendar {
    let clock = |minute: u16| {
        Some(TimeOfDay {
            hours: i32::from(minute / 60),
            minutes: i32::from(minute % 60),
            seconds: 0,
            nanos: 0,
        })
    };
    pb::Calendar {
        etag: calendar.etag(),
        id: calendar.id.to_string(),
        name: calendar.name,
        time_zone: calendar.time_zone,
        hours: calendar
            .week
            .iter()
            .zip(1..)
            .filter(|(ranges, _)| !ranges.is_empty())
            .map(|(ranges, weekday)| pb::DayHours {
                weekday,
                ranges: ranges
                    .iter()
                    .map(|(start, end)| pb::TimeRange {
                        start: clock(*start),
                        end: clock(*end),
                    })
                    .collect(),
            })
            .collect(),
        holidays: calendar
            .holidays
            .iter()
            .map(|date| GoogleDate {
                year: i32::from(date.year()),
                month: i32::from(date.month()),
                day: i32::from(date.day()),
            })
            .collect(),
        create_time: Some(timestamp(calendar.create_time)),
        update_time: Some(timestamp(calendar.update_time)),
    }
}

fn policy_input(policy: pb::SlaPolicy) -> Result<PolicyInput> {
    Ok(PolicyInput {
        first_response: duration("first_response_within", policy.first_response_within)?,
        update: duration("update_within", policy.update_within)?,
        solution: duration("solution_within", policy.solution_within)?,
        calendar_id: parse_optional_id("calendar_id", &policy.calendar_id)?,
        warning_percent: policy.warning_percent,
        name: policy.name,
    })
}

/// A protobuf duration as a signed duration; one whose parts disagree in sign is refused.
pub(crate) fn duration(
    field: &str,
    raw: Option<prost_types::Duration>,
) -> Result<Option<SignedDuration>> {
    let Some(raw) = raw else { return Ok(None) };
    if (raw.seconds > 0 && raw.nanos < 0) || (raw.seconds < 0 && raw.nanos > 0) {
        return Err(Error::invalid(
            field,
            "seconds and nanos must have the same sign",
        ));
    }
    // Compared without `abs`, which overflows on `i32::MIN`.
    if !(-999_999_999..=999_999_999).contains(&raw.nanos) {
        return Err(Error::invalid(field, "nanos must be less than one second"));
    }
    Ok(Some(SignedDuration::new(raw.seconds, raw.nanos)))
}

fn proto_duration(duration: Option<SignedDuration>) -> Option<prost_types::Duration> {
    duration.map(|d| prost_types::Duration {
        seconds: d.as_secs(),
        nanos: d.subsec_nanos(),
    })
}

fn policy_to_proto(policy: SlaPolicy) -> pb::SlaPolicy {
    pb::SlaPolicy {
        etag: policy.etag(),
        id: policy.id.to_string(),
        name: policy.name,
        first_response_within: proto_duration(policy.first_response),
        update_within: proto_duration(policy.update),
        solution_within: proto_duration(policy.solution),
        warning_percent: i32::from(policy.warning_percent),
        calendar_id: optional_id(policy.calendar_id),
        create_time: Some(timestamp(policy.create_time)),
        update_time: Some(timestamp(policy.update_time)),
    }
}
