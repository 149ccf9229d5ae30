//! SlaService: calendars and policies, their validation, updates with etags, and lists.

use clientele::proto::v1 as pb;
use jiff::SignedDuration;
use prost_types::FieldMask;
use tonic::Code;

use clientele::proto::google::r#type::{Date, DayOfWeek as Weekday, TimeOfDay};

use crate::support::{
    desk::{clock, date, duration},
    expect_code, expect_invalid,
};

fn range(start: &str, end: &str) -> pb::TimeRange {
    pb::TimeRange {
        start: Some(clock(start)),
        end: Some(clock(end)),
    }
}

fn day(weekday: Weekday, ranges: Vec<pb::TimeRange>) -> pb::DayHours {
    pb::DayHours {
        weekday: weekday.into(),
        ranges,
    }
}

fn calendar(hours: Vec<pb::DayHours>) -> pb::Calendar {
    pb::Calendar {
        name: "Office".into(),
        time_zone: "Europe/Berlin".into(),
        hours,
        ..Default::default()
    }
}

backend_tests! {
    async fn retried_creates_of_agents_groups_calendars_and_policies_create_once(server) {
        let agents = server.agents();
        let groups = server.groups();
        let slas = server.slas();
        // (what, create with a request id and a name, count of that kind)
        let agent = |id: &str, login: &str| {
            let mut agents = agents.clone();
            let request = pb::CreateAgentRequest { request_id: id.into(), agent: Some(pb::Agent { login: login.into(), ..Default::default() }) };
            async move { agents.create_agent(request).await.map(|r| r.into_inner().agent.expect("agent").id) }
        };
        let group = |id: &str, name: &str| {
            let mut groups = groups.clone();
            let request = pb::CreateGroupRequest { request_id: id.into(), group: Some(pb::Group { name: name.into(), ..Default::default() }) };
            async move { groups.create_group(request).await.map(|r| r.into_inner().group.expect("group").id) }
        };
        let calendar = |id: &str, name: &str| {
            let mut slas = slas.clone();
            let request = pb::CreateCalendarRequest { request_id: id.into(), calendar: Some(pb::Calendar { name: name.into(), ..super::calendar(vec![super::day(Weekday::Monday, vec![super::range("09:00", "17:00")])]) }) };
            async move { slas.create_calendar(request).await.map(|r| r.into_inner().calendar.expect("calendar").id) }
        };
        let policy = |id: &str, name: &str| {
            let mut slas = slas.clone();
            let request = pb::CreateSlaPolicyRequest { request_id: id.into(), sla_policy: Some(pb::SlaPolicy { name: name.into(), first_response_within: Some(duration(SignedDuration::from_hours(1))), ..Default::default() }) };
            async move { slas.create_sla_policy(request).await.map(|r| r.into_inner().sla_policy.expect("policy").id) }
        };
        let first = agent("retry-agent", "retried").await.expect("agent");
        assert_eq!(agent("retry-agent", "retried").await.expect("retry"), first);
        expect_invalid(agent("retry-agent", "someone-else").await, "request_id");
        let first = group("retry-group", "Retried").await.expect("group");
        assert_eq!(group("retry-group", "Retried").await.expect("retry"), first);
        expect_invalid(group("retry-group", "Other").await, "request_id");
        let first = calendar("retry-calendar", "Retried").await.expect("calendar");
        assert_eq!(calendar("retry-calendar", "Retried").await.expect("retry"), first);
        expect_invalid(calendar("retry-calendar", "Other").await, "request_id");
        let first = policy("retry-policy", "Retried").await.expect("policy");
        assert_eq!(policy("retry-policy", "Retried").await.expect("retry"), first);
        expect_invalid(policy("retry-policy", "Other").await, "request_id");
        // One of each, whatever was retried.
        let agents_listed = server.agents().list_agents(pb::ListAgentsRequest::default()).await.expect("agents").into_inner().agents;
        assert_eq!(agents_listed.iter().filter(|a| a.login == "retried").count(), 1);
        assert_eq!(server.groups().list_groups(pb::ListGroupsRequest::default()).await.expect("groups").into_inner().groups.len(), 1);
        assert_eq!(server.slas().list_calendars(pb::ListCalendarsRequest::default()).await.expect("calendars").into_inner().calendars.len(), 1);
        assert_eq!(server.slas().list_sla_policies(pb::ListSlaPoliciesRequest::default()).await.expect("policies").into_inner().sla_policies.len(), 1);
        expect_invalid(group("tab\there", "Tabbed").await, "request_id");
    }

    async fn a_calendar_keeps_several_ranges_a_day_and_sorted_holidays(server) {
        let created = server.slas().create_calendar(pb::CreateCalendarRequest { request_id: String::new(),
            calendar: Some(pb::Calendar {
                holidays: vec![date("2026-12-25"), date("2026-12-24"), date("2026-12-25")],
                ..calendar(vec![
                    day(Weekday::Monday, vec![range("13:00", "17:00"), range("08:00", "12:00")]),
                    day(Weekday::Saturday, vec![range("22:00", "24:00")]),
                ])
            }),
        }).await.expect("create").into_inner().calendar.expect("calendar");
        assert_eq!(created.holidays, [date("2026-12-24"), date("2026-12-25")]);
        let monday = &created.hours[0];
        assert_eq!(monday.weekday(), Weekday::Monday);
        assert_eq!(monday.ranges, [range("08:00", "12:00"), range("13:00", "17:00")], "ranges are kept sorted");
        assert_eq!(created.hours[1].ranges, [range("22:00", "24:00")]);
        let read = server.slas().get_calendar(pb::GetCalendarRequest { id: created.id.clone() }).await.expect("get").into_inner().calendar.expect("calendar");
        assert_eq!(read, created);
        let updated = server.slas().update_calendar(pb::UpdateCalendarRequest {
            calendar: Some(pb::Calendar { id: created.id.clone(), etag: created.etag.clone(), time_zone: "America/New_York".into(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["time_zone".into()] }),
        }).await.expect("update").into_inner().calendar.expect("calendar");
        assert_eq!(updated.time_zone, "America/New_York");
        assert_eq!(updated.hours, created.hours);
        expect_code(server.slas().update_calendar(pb::UpdateCalendarRequest {
            calendar: Some(pb::Calendar { id: created.id.clone(), etag: created.etag.clone(), name: "Stale".into(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["name".into()] }),
        }).await, Code::Aborted);
        let listed = server.slas().list_calendars(pb::ListCalendarsRequest::default()).await.expect("list").into_inner();
        assert_eq!(listed.calendars.len(), 1);
    }

    async fn bad_calendars_are_refused_naming_the_field_and_nothing_is_written(server) {
        let before = server.slas().list_calendars(pb::ListCalendarsRequest::default()).await.expect("list").into_inner().calendars.len();
        let monday = |ranges| vec![day(Weekday::Monday, ranges)];
        let cases: Vec<(pb::Calendar, &str)> = vec![
            (pb::Calendar { time_zone: "Mars/Olympus_Mons".into(), ..calendar(monday(vec![range("09:00", "17:00")])) }, "calendar.time_zone"),
            (pb::Calendar { time_zone: String::new(), ..calendar(monday(vec![range("09:00", "17:00")])) }, "calendar.time_zone"),
            (pb::Calendar { name: String::new(), ..calendar(monday(vec![range("09:00", "17:00")])) }, "calendar.name"),
            (calendar(monday(vec![range("09:00", "13:00"), range("12:00", "17:00")])), "calendar.hours[0].ranges[1]"),
            (calendar(monday(vec![range("17:00", "09:00")])), "calendar.hours[0].ranges[0].end"),
            (calendar(monday(vec![pb::TimeRange { start: None, ..range("09:00", "17:00") }])), "calendar.hours[0].ranges[0].start"),
            (calendar(monday(vec![pb::TimeRange { start: Some(TimeOfDay { seconds: 30, ..clock("09:00") }), ..range("09:00", "17:00") }])), "calendar.hours[0].ranges[0].start"),
            (calendar(monday(vec![pb::TimeRange { end: Some(TimeOfDay { nanos: 1, ..clock("17:00") }), ..range("09:00", "17:00") }])), "calendar.hours[0].ranges[0].end"),
            (calendar(monday(vec![pb::TimeRange { start: Some(TimeOfDay { hours: -1, ..clock("09:00") }), ..range("09:00", "17:00") }])), "calendar.hours[0].ranges[0].start"),
            (calendar(monday(vec![pb::TimeRange { start: Some(TimeOfDay { minutes: 60, ..clock("09:00") }), ..range("09:00", "17:00") }])), "calendar.hours[0].ranges[0].start"),
            (calendar(monday(vec![range("09:00", "24:30")])), "calendar.hours[0].ranges[0].end"),
            (calendar(monday(vec![range("24:00", "24:00")])), "calendar.hours[0].ranges[0].start"),
            (calendar(vec![day(Weekday::Unspecified, vec![range("09:00", "17:00")])]), "calendar.hours[0].weekday"),
            (calendar(vec![day(Weekday::Monday, vec![range("09:00", "12:00")]), day(Weekday::Monday, vec![range("13:00", "17:00")])]), "calendar.hours[1].weekday"),
            (calendar(vec![]), "calendar.hours"),
            (pb::Calendar { holidays: vec![Date { year: 0, month: 12, day: 24 }], ..calendar(monday(vec![range("09:00", "17:00")])) }, "calendar.holidays[0]"),
            (pb::Calendar { holidays: vec![Date { year: 2026, month: 12, day: 0 }], ..calendar(monday(vec![range("09:00", "17:00")])) }, "calendar.holidays[0]"),
            (pb::Calendar { holidays: vec![date("2026-12-24"), Date { year: 2026, month: 2, day: 30 }], ..calendar(monday(vec![range("09:00", "17:00")])) }, "calendar.holidays[1]"),
            (pb::Calendar { holidays: vec![Date { year: i32::MAX, month: i32::MIN, day: -1 }], ..calendar(monday(vec![range("09:00", "17:00")])) }, "calendar.holidays[0]"),
        ];
        for (calendar, field) in cases {
            expect_invalid(server.slas().create_calendar(pb::CreateCalendarRequest { calendar: Some(calendar), request_id: String::new() }).await, field);
        }
        let after = server.slas().list_calendars(pb::ListCalendarsRequest::default()).await.expect("list").into_inner().calendars.len();
        assert_eq!(after, before);
    }

    async fn policies_need_positive_budgets_a_warning_share_and_a_known_calendar(server) {
        let policy = |name: &str| pb::SlaPolicy { name: name.into(), first_response_within: Some(duration(SignedDuration::from_hours(2))), warning_percent: 80, ..Default::default() };
        let cases: Vec<(pb::SlaPolicy, &str)> = vec![
            (pb::SlaPolicy { first_response_within: Some(duration(SignedDuration::ZERO)), ..policy("zero") }, "sla_policy.first_response_within"),
            (pb::SlaPolicy { update_within: Some(duration(SignedDuration::from_secs(-60))), ..policy("negative") }, "sla_policy.update_within"),
            (pb::SlaPolicy { solution_within: Some(prost_types::Duration { seconds: 60, nanos: 5 }), ..policy("fractional") }, "sla_policy.solution_within"),
            (pb::SlaPolicy { solution_within: Some(prost_types::Duration { seconds: 60, nanos: -5 }), ..policy("mixed signs") }, "sla_policy.solution_within"),
            (pb::SlaPolicy { solution_within: Some(prost_types::Duration { seconds: -60, nanos: i32::MIN }), ..policy("nanos out of range") }, "sla_policy.solution_within"),
            (pb::SlaPolicy { solution_within: Some(prost_types::Duration { seconds: i64::MAX, nanos: 0 }), ..policy("forever") }, "sla_policy.solution_within"),
            (pb::SlaPolicy { update_within: Some(prost_types::Duration { seconds: i64::MIN, nanos: -999_999_999 }), ..policy("before time") }, "sla_policy.update_within"),
            (pb::SlaPolicy { warning_percent: 100, ..policy("full") }, "sla_policy.warning_percent"),
            (pb::SlaPolicy { warning_percent: -1, ..policy("less") }, "sla_policy.warning_percent"),
            (pb::SlaPolicy { calendar_id: uuid::Uuid::now_v7().to_string(), ..policy("unknown calendar") }, "sla_policy.calendar_id"),
            (pb::SlaPolicy { calendar_id: "office".into(), ..policy("bad id") }, "sla_policy.calendar_id"),
            (pb::SlaPolicy { name: String::new(), ..policy("") }, "sla_policy.name"),
        ];
        for (policy, field) in cases {
            expect_invalid(server.slas().create_sla_policy(pb::CreateSlaPolicyRequest { sla_policy: Some(policy), request_id: String::new() }).await, field);
        }
        assert!(server.slas().list_sla_policies(pb::ListSlaPoliciesRequest::default()).await.expect("list").into_inner().sla_policies.is_empty());
        let created = server.slas().create_sla_policy(pb::CreateSlaPolicyRequest { sla_policy: Some(policy("Gold")), request_id: String::new() }).await.expect("create").into_inner().sla_policy.expect("policy");
        assert_eq!(created.first_response_within, Some(duration(SignedDuration::from_hours(2))));
        assert_eq!(created.update_within, None);
        expect_code(server.slas().create_sla_policy(pb::CreateSlaPolicyRequest { sla_policy: Some(policy("gold")), request_id: String::new() }).await, Code::AlreadyExists);
        let updated = server.slas().update_sla_policy(pb::UpdateSlaPolicyRequest {
            sla_policy: Some(pb::SlaPolicy { id: created.id.clone(), etag: created.etag.clone(), update_within: Some(duration(SignedDuration::from_hours(8))), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["update_within".into()] }),
        }).await.expect("update").into_inner().sla_policy.expect("policy");
        assert_eq!(updated.update_within, Some(duration(SignedDuration::from_hours(8))));
        assert_eq!(updated.first_response_within, created.first_response_within);
    }

    async fn only_admins_change_sla_settings_and_staff_read_them(server) {
        let agent = server.agent("reader", false).await;
        let agent = server.as_token(&server.token(pb::token_owner::Owner::AgentId(agent.id)).await);
        expect_code(agent.slas.clone().create_sla_policy(pb::CreateSlaPolicyRequest { request_id: String::new(),
            sla_policy: Some(pb::SlaPolicy { name: "Nope".into(), ..Default::default() }),
        }).await, Code::PermissionDenied);
        agent.slas.clone().list_sla_policies(pb::ListSlaPoliciesRequest::default()).await.expect("agents read policies");
        expect_code(agent.slas.clone().get_calendar(pb::GetCalendarRequest { id: uuid::Uuid::now_v7().to_string() }).await, Code::NotFound);
    }
}
