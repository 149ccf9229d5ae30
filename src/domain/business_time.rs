//! Business time: durations that count only inside a calendar's business hours, exact across
//! time zones, daylight-saving changes, midnight and holidays.
//!
//! A calendar's hours are civil times in its zone; each range is turned into the absolute
//! instants it covers on a given date (a range across a DST change is as long as the clocks
//! say: 01:00–04:00 is two hours on a spring-forward night and four on a fall-back night).
//! Civil times that do not exist (in a spring-forward gap) are the instant the clocks jumped,
//! repeated ones (in a fall-back fold) take their first occurrence.

use std::collections::BTreeSet;

use jiff::{
    SignedDuration, Timestamp,
    civil::{Date, Time},
    tz::{AmbiguousOffset, TimeZone},
};

use crate::model::Minute;

/// Business hours in a time zone.
#[derive(Clone, Debug)]
pub struct BusinessHours {
    zone: TimeZone,
    /// Per weekday, Monday first: sorted, non-overlapping ranges `[start, end)`.
    week: [Vec<(Minute, Minute)>; 7],
    holidays: BTreeSet<Date>,
}

/// When a calendar governs a deadline, or none (every hour counts: 24×7).
#[derive(Clone, Debug)]
pub enum Hours {
    /// Every hour of every day.
    Always,
    /// Only a calendar's business hours.
    Calendar(BusinessHours),
}

/// Days to look ahead before giving up on a calendar that has (almost) no hours.
const MAX_DAYS: u32 = 366 * 20;

impl BusinessHours {
    /// Business hours in `zone`: `week` per weekday from Monday, sorted and disjoint (the
    /// domain checks that), and no business on `holidays`.
    pub fn new(zone: TimeZone, week: [Vec<(Minute, Minute)>; 7], holidays: BTreeSet<Date>) -> Self {
        Self {
            zone,
            week,
            holidays,
        }
    }

    /// The absolute instants of business on `date`.
    fn ranges_on(&self, date: Date) -> Vec<(Timestamp, Timestamp)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let day = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
        self.week[day]
            .iter()
            .filter_map(|(start, end)| {
                let start = self.instant(date, *start)?;
                let end = self.instant(date, *end)?;
                (start < end).then_some((start, end))
            })
            .collect()
    }

    /// The instant of `minute` on `date` in the zone (1440 is the next day's midnight).
    fn instant(&self, date: Date, minute: Minute) -> Option<Timestamp> {
        let (date, minute) = if minute >= 1440 {
            (date.tomorrow().ok()?, 0)
        } else {
            (date, minute)
        };
        let time = Time::new(
            i8::try_from(minute / 60).ok()?,
            i8::try_from(minute % 60).ok()?,
            0,
            0,
        )
        .ok()?;
        let ambiguous = self.zone.to_ambiguous_timestamp(date.to_datetime(time));
        match ambiguous.offset() {
            // A clock time a spring-forward skipped stands for the instant the clocks jumped:
            // so every time of the gap is one instant, and a range's instants keep the order of
            // its clock times (moving them forward by the gap would overlap the next range).
            AmbiguousOffset::Gap { .. } => {
                let before_the_jump = ambiguous.earlier().ok()?;
                self.zone
                    .following(before_the_jump)
                    .next()
                    .map(|jump| jump.timestamp())
            }
            // A repeated clock time (a fall-back fold) is its first occurrence.
            _ => ambiguous.earlier().ok(),
        }
    }

    /// The date `at` falls on in the zone, less a day: a range of the previous date may reach
    /// past midnight only at 24:00, but starting a day early costs little and is always safe.
    fn first_date(&self, at: Timestamp) -> Date {
        let date = self.zone.to_datetime(at).date();
        date.yesterday().unwrap_or(date)
    }
}

impl Hours {
    /// The instant `duration` of business time after `start`.
    pub fn add(&self, start: Timestamp, duration: SignedDuration) -> Timestamp {
        if duration <= SignedDuration::ZERO {
            return start;
        }
        let hours = match self {
            Self::Always => return start.checked_add(duration).unwrap_or(start),
            Self::Calendar(hours) => hours,
        };
        let mut remaining = duration;
        let mut date = hours.first_date(start);
        for _ in 0..MAX_DAYS {
            for (from, to) in hours.ranges_on(date) {
                if to <= start {
                    continue;
                }
                let from = from.max(start);
                let available = to.duration_since(from);
                if remaining <= available {
                    return from.checked_add(remaining).unwrap_or(to);
                }
                remaining -= available;
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        // A calendar without hours for decades: no business time will ever pass.
        Timestamp::MAX
    }

    /// The business time between `from` and `to` (zero when `to` is not after `from`).
    pub fn between(&self, from: Timestamp, to: Timestamp) -> SignedDuration {
        if to <= from {
            return SignedDuration::ZERO;
        }
        let hours = match self {
            Self::Always => return to.duration_since(from),
            Self::Calendar(hours) => hours,
        };
        // The dates whose ranges can hold part of [from, to]: from the day before `from`'s
        // to `to`'s own date (capped like `add`, for a `to` decades away).
        let last = hours.zone.to_datetime(to).date();
        let mut total = SignedDuration::ZERO;
        let mut date = hours.first_date(from);
        for _ in 0..MAX_DAYS {
            for (start, end) in hours.ranges_on(date) {
                let start = start.max(from);
                let end = end.min(to);
                // Equivalent mutant (cargo-mutants): `<=` adds the zero duration of an empty
                // overlap, which changes nothing.
                if start < end {
                    total += end.duration_since(start);
                }
            }
            if date >= last {
                break;
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        total
    }

    /// Whether `at` lies inside business hours (a range's end counts as inside: a deadline may
    /// fall on the last instant of a business day).
    pub fn is_business(&self, at: Timestamp) -> bool {
        match self {
            Self::Always => true,
            Self::Calendar(hours) => {
                let date = hours.first_date(at);
                [
                    Some(date),
                    date.tomorrow().ok(),
                    date.tomorrow().ok().and_then(|d| d.tomorrow().ok()),
                ]
                .into_iter()
                .flatten()
                .any(|date| {
                    hours
                        .ranges_on(date)
                        .iter()
                        .any(|(from, to)| *from <= at && at <= *to)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::{civil::date, tz::TimeZone};

    use super::*;
    use crate::testing::Lcg;

    fn office(zone: &str, holidays: &[Date]) -> Hours {
        let day = vec![(9 * 60, 17 * 60)];
        Hours::Calendar(BusinessHours::new(
            TimeZone::get(zone).unwrap(),
            [
                day.clone(),
                day.clone(),
                day.clone(),
                day.clone(),
                day,
                vec![],
                vec![],
            ],
            holidays.iter().copied().collect(),
        ))
    }

    fn every_day(zone: &str, ranges: Vec<(Minute, Minute)>) -> Hours {
        Hours::Calendar(BusinessHours::new(
            TimeZone::get(zone).unwrap(),
            std::array::from_fn(|_| ranges.clone()),
            BTreeSet::new(),
        ))
    }

    fn at(zone: &str, date: Date, hour: i8, minute: i8) -> Timestamp {
        TimeZone::get(zone)
            .unwrap()
            .to_timestamp(date.at(hour, minute, 0, 0))
            .unwrap()
    }

    const BERLIN: &str = "Europe/Berlin";
    const NEW_YORK: &str = "America/New_York";

    #[test]
    fn a_friday_evening_ticket_is_due_on_monday() {
        let hours = office(BERLIN, &[]);
        // 2026-11-27 is a Friday.
        let friday = at(BERLIN, date(2026, 11, 27), 16, 30);
        let due = hours.add(friday, SignedDuration::from_hours(2));
        assert_eq!(due, at(BERLIN, date(2026, 11, 30), 10, 30));
        let after_hours = at(BERLIN, date(2026, 11, 27), 18, 0);
        let due = hours.add(after_hours, SignedDuration::from_hours(1));
        assert_eq!(due, at(BERLIN, date(2026, 11, 30), 10, 0));
    }

    #[test]
    fn a_weekend_ticket_starts_counting_on_monday_morning() {
        let hours = office(BERLIN, &[]);
        let saturday = at(BERLIN, date(2026, 11, 28), 11, 0);
        let due = hours.add(saturday, SignedDuration::from_hours(2));
        assert_eq!(due, at(BERLIN, date(2026, 11, 30), 11, 0));
    }

    #[test]
    fn holidays_have_no_business_hours() {
        let hours = office(BERLIN, &[date(2026, 12, 24), date(2026, 12, 25)]);
        let wednesday = at(BERLIN, date(2026, 12, 23), 16, 0);
        let due = hours.add(wednesday, SignedDuration::from_hours(3));
        // 1 h on Wednesday, Thursday and Friday are holidays, 2 h on Monday the 28th.
        assert_eq!(due, at(BERLIN, date(2026, 12, 28), 11, 0));
    }

    #[test]
    fn several_ranges_a_day_skip_the_lunch_break() {
        let hours = every_day(BERLIN, vec![(9 * 60, 12 * 60), (13 * 60, 17 * 60)]);
        let start = at(BERLIN, date(2026, 6, 10), 11, 30);
        assert_eq!(
            hours.add(start, SignedDuration::from_hours(1)),
            at(BERLIN, date(2026, 6, 10), 13, 30)
        );
        assert_eq!(
            hours.between(start, at(BERLIN, date(2026, 6, 10), 14, 0)),
            SignedDuration::from_mins(90)
        );
    }

    #[test]
    fn a_night_shift_runs_across_midnight() {
        let hours = every_day(BERLIN, vec![(0, 6 * 60), (22 * 60, 1440)]);
        let start = at(BERLIN, date(2026, 6, 10), 23, 0);
        assert_eq!(
            hours.add(start, SignedDuration::from_hours(2)),
            at(BERLIN, date(2026, 6, 11), 1, 0)
        );
    }

    #[test]
    fn berlin_spring_forward_has_one_hour_less() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST.
        let hours = every_day(BERLIN, vec![(60, 4 * 60)]);
        let night = date(2026, 3, 29);
        assert_eq!(
            hours.between(at(BERLIN, night, 1, 0), at(BERLIN, night, 4, 0)),
            SignedDuration::from_hours(2)
        );
        assert_eq!(
            hours.add(at(BERLIN, night, 1, 30), SignedDuration::from_mins(60)),
            at(BERLIN, night, 3, 30)
        );
        let always = every_day(BERLIN, vec![(0, 1440)]);
        assert_eq!(
            always.add(
                at(BERLIN, date(2026, 3, 28), 23, 0),
                SignedDuration::from_hours(3)
            ),
            at(BERLIN, night, 3, 0)
        );
    }

    #[test]
    fn berlin_fall_back_has_one_hour_more() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET.
        let hours = every_day(BERLIN, vec![(60, 4 * 60)]);
        let night = date(2026, 10, 25);
        assert_eq!(
            hours.between(at(BERLIN, night, 1, 0), at(BERLIN, night, 4, 0)),
            SignedDuration::from_hours(4)
        );
        assert_eq!(
            hours.add(at(BERLIN, night, 1, 0), SignedDuration::from_hours(3)),
            at(BERLIN, night, 3, 0)
        );
    }

    #[test]
    fn clock_times_skipped_by_spring_forward_are_no_business_time() {
        // 2026-03-29 in Berlin: 02:00–03:00 never shows on a clock.
        let night = date(2026, 3, 29);
        let hours = every_day(BERLIN, vec![(2 * 60, 2 * 60 + 30), (3 * 60, 4 * 60)]);
        assert_eq!(
            hours.between(at(BERLIN, night, 0, 0), at(BERLIN, night, 5, 0)),
            SignedDuration::from_hours(1)
        );
        assert_eq!(
            hours.add(at(BERLIN, night, 0, 0), SignedDuration::from_mins(30)),
            at(BERLIN, night, 3, 30)
        );
        // 02:30–03:30 by the clock is the half hour from 03:00 CEST.
        let straddling = every_day(BERLIN, vec![(2 * 60 + 30, 3 * 60 + 30)]);
        assert_eq!(
            straddling.between(at(BERLIN, night, 0, 0), at(BERLIN, night, 5, 0)),
            SignedDuration::from_mins(30)
        );
        assert_eq!(
            straddling.add(at(BERLIN, night, 0, 0), SignedDuration::from_mins(10)),
            at(BERLIN, night, 3, 10)
        );
    }

    #[test]
    fn a_range_the_spring_forward_skips_whole_is_no_business_even_at_the_jump() {
        // 02:15–02:45 does not exist on 2026-03-29 in Berlin: the clocks jump from 02:00 CET
        // to 03:00 CEST (01:00 UTC), and that instant is not business either.
        let night = date(2026, 3, 29);
        let hours = every_day(BERLIN, vec![(2 * 60 + 15, 2 * 60 + 45)]);
        let jump = at(BERLIN, night, 3, 0);
        assert!(!hours.is_business(jump), "{jump}");
        assert!(hours.is_business(at(BERLIN, date(2026, 3, 30), 2, 30)));
    }

    #[test]
    fn new_york_night_hours_across_both_changes() {
        let hours = every_day(NEW_YORK, vec![(60, 4 * 60)]);
        // 2026-03-08: 01:00–04:00 by the clock is two hours; 01:30 EST + 1 h is 03:30 EDT.
        let spring = date(2026, 3, 8);
        assert_eq!(
            hours.between(at(NEW_YORK, spring, 0, 0), at(NEW_YORK, spring, 5, 0)),
            SignedDuration::from_hours(2)
        );
        assert_eq!(
            hours.add(at(NEW_YORK, spring, 1, 30), SignedDuration::from_hours(1)),
            at(NEW_YORK, spring, 3, 30)
        );
        // 2026-11-01: 01:00 EDT to 04:00 EST is four hours; 01:00 EDT + 2.5 h is 02:30 EST
        // (07:30 UTC), after 01:00–02:00 has passed twice.
        let autumn = date(2026, 11, 1);
        assert_eq!(
            hours.between(at(NEW_YORK, autumn, 0, 0), at(NEW_YORK, autumn, 5, 0)),
            SignedDuration::from_hours(4)
        );
        assert_eq!(
            hours.add(at(NEW_YORK, autumn, 1, 0), SignedDuration::from_mins(150)),
            "2026-11-01T07:30:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn new_york_spring_forward_and_fall_back() {
        let hours = every_day(NEW_YORK, vec![(0, 1440)]);
        // 2026-03-08: 02:00 EST becomes 03:00 EDT; the day has 23 hours.
        assert_eq!(
            hours.between(
                at(NEW_YORK, date(2026, 3, 8), 0, 0),
                at(NEW_YORK, date(2026, 3, 9), 0, 0)
            ),
            SignedDuration::from_hours(23)
        );
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; the day has 25 hours.
        assert_eq!(
            hours.between(
                at(NEW_YORK, date(2026, 11, 1), 0, 0),
                at(NEW_YORK, date(2026, 11, 2), 0, 0)
            ),
            SignedDuration::from_hours(25)
        );
        let office = office(NEW_YORK, &[]);
        // Friday 2026-03-06 16:00 + 2 h: 1 h on Friday, 1 h on Monday after the change.
        assert_eq!(
            office.add(
                at(NEW_YORK, date(2026, 3, 6), 16, 0),
                SignedDuration::from_hours(2)
            ),
            at(NEW_YORK, date(2026, 3, 9), 10, 0)
        );
    }

    #[test]
    fn without_a_calendar_every_hour_counts() {
        let start = at(BERLIN, date(2026, 11, 28), 23, 0);
        assert_eq!(
            Hours::Always.add(start, SignedDuration::from_hours(5)),
            start.checked_add(SignedDuration::from_hours(5)).unwrap()
        );
    }

    /// A small deterministic generator, so that the property tests are repeatable.
    fn random_hours(rng: &mut Lcg) -> Hours {
        let zones = [
            BERLIN,
            NEW_YORK,
            "Asia/Tokyo",
            "Australia/Sydney",
            "UTC",
            "Asia/Kolkata",
        ];
        let zone = zones[rng.next(zones.len() as u64) as usize];
        let week: [Vec<(Minute, Minute)>; 7] = std::array::from_fn(|_| {
            let mut ranges = Vec::new();
            let mut cursor = rng.next(600) as Minute;
            for _ in 0..rng.next(4) {
                let start = cursor + rng.next(180) as Minute;
                let end = start + 1 + rng.next(300) as Minute;
                if end > 1440 {
                    break;
                }
                ranges.push((start, end));
                cursor = end;
            }
            ranges
        });
        let mut holidays = BTreeSet::new();
        for _ in 0..rng.next(200) {
            if let Ok(day) =
                date(2020, 1, 1).checked_add(jiff::Span::new().days(rng.next(15 * 366) as i64))
            {
                holidays.insert(day);
            }
        }
        if week.iter().all(Vec::is_empty) {
            return every_day(zone, vec![(9 * 60, 17 * 60)]);
        }
        Hours::Calendar(BusinessHours::new(
            TimeZone::get(zone).unwrap(),
            week,
            holidays,
        ))
    }

    #[test]
    fn a_deadline_always_falls_inside_business_hours() {
        let mut rng = Lcg(7);
        for _ in 0..2000 {
            let hours = random_hours(&mut rng);
            let start = random_start(&mut rng);
            let duration = SignedDuration::from_secs(1 + rng.next(400 * 3600) as i64);
            let due = hours.add(start, duration);
            assert!(
                hours.is_business(due),
                "{due} from {start} + {duration:?} in {hours:?}"
            );
        }
    }

    #[test]
    fn adding_then_measuring_business_time_round_trips() {
        let mut rng = Lcg(11);
        for _ in 0..2000 {
            let hours = random_hours(&mut rng);
            let start = random_start(&mut rng);
            let duration = SignedDuration::from_secs(rng.next(400 * 3600) as i64);
            let due = hours.add(start, duration);
            assert_eq!(
                hours.between(start, due),
                duration,
                "from {start} in {hours:?}"
            );
        }
    }

    #[test]
    fn business_time_never_exceeds_the_time_that_passed() {
        let mut rng = Lcg(13);
        for _ in 0..2000 {
            let hours = random_hours(&mut rng);
            let from = random_start(&mut rng);
            let to = from
                .checked_add(SignedDuration::from_secs(rng.next(30 * 86_400) as i64))
                .unwrap();
            let business = hours.between(from, to);
            assert!(
                business <= to.duration_since(from),
                "{business:?} between {from} and {to} in {hours:?}"
            );
        }
    }

    #[test]
    fn a_longer_budget_never_ends_earlier() {
        let mut rng = Lcg(17);
        for _ in 0..2000 {
            let hours = random_hours(&mut rng);
            let start = random_start(&mut rng);
            let shorter = SignedDuration::from_secs(rng.next(200 * 3600) as i64);
            let longer = shorter + SignedDuration::from_secs(1 + rng.next(10 * 3600) as i64);
            assert!(
                hours.add(start, shorter) < hours.add(start, longer),
                "{shorter:?} and {longer:?} from {start} in {hours:?}"
            );
        }
    }

    #[test]
    fn outside_its_ranges_an_office_has_no_business() {
        let christmas = date(2026, 12, 24);
        let hours = office(BERLIN, &[christmas]);
        let monday = date(2026, 11, 30);
        let cases = [
            (at(BERLIN, monday, 8, 59), false),
            (at(BERLIN, monday, 9, 0), true),
            (at(BERLIN, monday, 12, 30), true),
            (at(BERLIN, monday, 17, 0), true),
            (at(BERLIN, monday, 17, 1), false),
            (at(BERLIN, monday, 23, 0), false),
            (at(BERLIN, date(2026, 12, 5), 12, 0), false),
            (at(BERLIN, christmas, 12, 0), false),
            (at(BERLIN, date(2026, 12, 23), 12, 0), true),
        ];
        for (instant, business) in cases {
            assert_eq!(hours.is_business(instant), business, "{instant}");
        }
    }

    #[test]
    fn an_instant_is_business_exactly_when_business_time_touches_it() {
        let mut rng = Lcg(19);
        let second = SignedDuration::from_secs(1);
        let (mut inside, mut outside) = (0, 0);
        for _ in 0..3000 {
            let hours = random_hours(&mut rng);
            let instant = random_start(&mut rng);
            let touched = hours.between(instant - second, instant) > SignedDuration::ZERO
                || hours.between(instant, instant + second) > SignedDuration::ZERO;
            assert_eq!(
                hours.is_business(instant),
                touched,
                "{instant} in {hours:?}"
            );
            if touched {
                inside += 1;
            } else {
                outside += 1;
            }
        }
        assert!(
            inside > 300 && outside > 300,
            "both kinds checked: {inside} and {outside}"
        );
    }

    /// An instant from 2020 to 2035, so that many DST changes and years are crossed.
    fn random_start(rng: &mut Lcg) -> Timestamp {
        Timestamp::from_second(1_577_836_800 + rng.next(15 * 366 * 86_400) as i64).unwrap()
    }
}
