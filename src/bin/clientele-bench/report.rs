//! The markdown report: a table per run, with ratios to the ceilings.

use std::{fmt::Write, time::Duration};

use crate::{
    Args,
    load::{Measured, Results},
    seed::Fixture,
    server::Target,
};

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn memory(bytes: Option<u64>) -> String {
    bytes.map_or("–".into(), |b| {
        format!("{:.0} MiB", b as f64 / 1024.0 / 1024.0)
    })
}

fn rate(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The report of one run.
pub fn markdown(args: &Args, target: &Target, fixture: &Fixture, results: &Results) -> String {
    let mut out = String::new();
    let (organisations, customers, tickets) = fixture.sizes;
    let _ = writeln!(
        out,
        "### {} — {} organisations, {} customers, {} tickets\n",
        target.backend, organisations, customers, tickets
    );
    let _ = writeln!(
        out,
        "{} concurrent clients over {} connections, {:?} measured after {:?} of warm-up.{}\n",
        args.concurrency,
        args.concurrency.clamp(1, 8),
        args.duration,
        args.warmup,
        fixture
            .seeding
            .map(|d| format!(" Seeding took {:.0} s.", d.as_secs_f64()))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "| scenario | rate | p50 | p99 | errors | ratio | server peak RSS |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---:|");
    let health = results.health.rate;
    let row = |out: &mut String, name: &str, unit: &str, m: &Measured, ratio: String| {
        let _ = writeln!(
            out,
            "| {name} | {} {unit} | {} | {} | {} | {ratio} | {} |",
            rate(m.rate),
            ms(m.p50),
            ms(m.p99),
            m.errors,
            memory(m.peak_memory)
        );
    };
    if args.runs("health") {
        row(
            &mut out,
            "Health/Check (ceiling: tonic here)",
            "req/s",
            &results.health,
            "1.00".into(),
        );
    }
    let composed = results
        .database
        .as_ref()
        .map(|db| 1.0 / (1.0 / health + 1.0 / db.rate));
    if let Some(db) = &results.database {
        row(
            &mut out,
            "PostgreSQL primary-key select (ceiling: the database)",
            "req/s",
            db,
            "–".into(),
        );
        let _ = writeln!(
            out,
            "| composed ceiling 1/(1/health + 1/db) | {} req/s | | | | | |",
            rate(composed.unwrap_or_default())
        );
    }
    let versus = |m: &Measured| match composed {
        _ if health <= 0.0 => "–".to_owned(),
        Some(composed) => format!(
            "{:.2} × Health, {:.2} × composed",
            m.rate / health,
            m.rate / composed
        ),
        None => format!("{:.2} × Health", m.rate / health),
    };
    for (name, scenario, measured) in [
        (
            "GetOrganisation (agent)",
            "get-organisation",
            &results.get_organisation,
        ),
        (
            "GetTicket (agent, rights from five grants)",
            "get-ticket",
            &results.get_ticket,
        ),
        (
            "GetTicket (customer, by its organisation's SAME_ORGANISATION grant)",
            "get-ticket-customer",
            &results.get_ticket_customer,
        ),
    ] {
        if args.runs(scenario) {
            row(&mut out, name, "req/s", measured, versus(measured));
        }
    }
    if let Some(lists) = &results.lists {
        for (name, measured) in [
            (
                "ListCustomers, first page of 20 (agent)".to_owned(),
                &lists.first_page,
            ),
            (
                format!("ListCustomers, page of 20 after {} (agent)", lists.depth),
                &lists.deep_page,
            ),
            (
                "ListCustomers, search with one hit".to_owned(),
                &lists.search_one,
            ),
            (
                "ListCustomers, search with many hits, first 20 by relevance".to_owned(),
                &lists.search_many,
            ),
        ] {
            row(&mut out, &name, "req/s", measured, versus(measured));
        }
    }
    let composed_write = write_rows(&mut out, args, results);
    if args.runs("list-tickets") {
        list_rows(&mut out, results);
    }
    if let Some(measured) = &results.feed_delay {
        let _ = writeln!(
            out,
            "| CreateTicket on one replica, its change at a WatchChanges follower on another ({} writes) | {} writes/s | {} | {} | {} | – | – |",
            measured.count,
            rate(measured.rate),
            ms(measured.p50),
            ms(measured.p99),
            measured.errors
        );
    }
    if args.runs("watch-changes") {
        let measured = &results.watch_changes;
        let _ = writeln!(
            out,
            "| WatchChanges, one follower, {} changes from the first | {} changes/s | first message {} | all {} | {} | RSS {} | – |",
            measured.count,
            rate(measured.rate),
            ms(measured.p50),
            ms(measured.p99),
            measured.errors,
            memory(measured.peak_memory)
        );
    }
    if let Some(sources) = &results.sources {
        for (name, synced) in [
            ("first, every customer created", &sources.first),
            ("again, full, nothing changed", &sources.again),
        ] {
            let _ = writeln!(
                out,
                "| Customer source sync of {} LDAP entries, {name} ({} read, {} changed) | {} entries/s | all {} | – | {} refused{} | RSS {} before | {} |",
                sources.entries,
                synced.read,
                synced.changed,
                rate(synced.read as f64 / synced.elapsed.as_secs_f64().max(1e-9)),
                ms(synced.elapsed),
                synced.refused,
                if synced.error.is_empty() {
                    String::new()
                } else {
                    format!(", failed: {}", synced.error)
                },
                memory(sources.before),
                memory(synced.peak_memory)
            );
        }
    }
    if let Some(principals) = &results.principals {
        let _ = writeln!(
            out,
            "| {} distinct principals, one GetTicket each | {} req/s | {} | {} | {} | RSS {} before, {} after | {} |",
            principals.count,
            rate(principals.calls.rate),
            ms(principals.calls.p50),
            ms(principals.calls.p99),
            principals.calls.errors,
            memory(principals.before),
            memory(principals.after),
            memory(principals.calls.peak_memory)
        );
    }
    if args.runs("watch") {
        let _ = writeln!(
            out,
            "| WatchEscalations: deadline → event, {} watchers | {} events | {} | {} | {} missed | | {} |",
            results.watchers,
            results.watch.count,
            ms(results.watch.p50),
            ms(results.watch.p99),
            results.watch.errors,
            memory(results.watch.peak_memory)
        );
    }
    targets(&mut out, args, target, results, composed);
    write_targets(&mut out, args, target, results, composed_write);
    out
}

/// The write ceilings and the writes next to them; returns the composed write ceiling,
/// `1 / (1/health + 1/db_write)`, when it was measured.
fn write_rows(out: &mut String, args: &Args, results: &Results) -> Option<f64> {
    let health = results.health.rate;
    let composed = results
        .write_ceiling
        .as_ref()
        .filter(|_| health > 0.0)
        .map(|db| 1.0 / (1.0 / health + 1.0 / db.rate));
    let row = |out: &mut String, name: &str, m: &Measured, ratio: String| {
        let _ = writeln!(
            out,
            "| {name} | {} req/s | {} | {} | {} | {ratio} | {} |",
            rate(m.rate),
            ms(m.p50),
            ms(m.p99),
            m.errors,
            memory(m.peak_memory)
        );
    };
    if let Some(ceiling) = &results.write_ceiling {
        row(
            out,
            "TPC-B-like transaction through sqlx (ceiling: the database's writes)",
            ceiling,
            "–".into(),
        );
    }
    if let Some(composed) = composed {
        let _ = writeln!(
            out,
            "| composed write ceiling 1/(1/health + 1/db_write) | {} req/s | | | | | |",
            rate(composed)
        );
    }
    let versus = |m: &Measured| match composed {
        Some(composed) => format!("{:.2} × composed write", m.rate / composed),
        None => "–".to_owned(),
    };
    for (name, scenario, measured) in write_scenarios(results) {
        if args.runs(scenario) {
            row(out, name, measured, versus(measured));
        }
    }
    if let Some(mixed) = &results.mixed {
        row(
            out,
            "Mixed: 70 % reads, 20 % updates, 10 % creates, at saturation",
            &mixed.saturated,
            versus(&mixed.saturated),
        );
        row(
            out,
            "Mixed at half the saturated rate (latency from when each was due)",
            &mixed.half,
            "–".into(),
        );
    }
    if let Some(stream) = &results.stream_ceiling {
        let _ = writeln!(
            out,
            "| ticket rows through sqlx (ceiling: the database's stream) | {} rows/s | first after {} | all after {} | | {} rows | |",
            rate(stream.rate),
            ms(stream.p50),
            ms(stream.p99),
            stream.count
        );
    }
    composed
}

/// The writes measured against the composed write ceiling (issue 14).
fn write_scenarios(results: &Results) -> [(&'static str, &'static str, &Measured); 4] {
    [
        (
            "CreateTicket (agent)",
            "create-ticket",
            &results.create_ticket,
        ),
        (
            "UpdateTicket (agent, a state change)",
            "update-ticket",
            &results.update_ticket,
        ),
        (
            "CreateComment (agent, a public reply)",
            "create-comment",
            &results.create_comment,
        ),
        (
            "CreateCustomer (admin, organisation by email domain)",
            "create-customer",
            &results.create_customer,
        ),
    ]
}

/// The targets of issue 14, met or missed, for the scenarios that ran.
fn write_targets(
    out: &mut String,
    args: &Args,
    target: &Target,
    results: &Results,
    composed: Option<f64>,
) {
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    let mut lines = Vec::new();
    if let Some(composed) = composed {
        for (name, scenario, measured) in write_scenarios(results) {
            if args.runs(scenario) {
                let ratio = measured.rate / composed;
                lines.push(format!(
                    "{name} ≥ 0.5 × composed write ceiling ({}): {ratio:.2} — {}",
                    target.backend,
                    verdict(ratio >= 0.5)
                ));
            }
        }
    }
    if let (Some(stream), true) = (&results.stream_ceiling, args.runs("list-tickets")) {
        let ratio = results.list_fast.rate / stream.rate;
        lines.push(format!(
            "ListTickets ≥ 0.5 × stream ceiling ({}): {ratio:.2} — {}",
            target.backend,
            verdict(ratio >= 0.5)
        ));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nTargets of the writes:\n");
    for line in lines {
        let _ = writeln!(out, "- {line}");
    }
}

/// The targets of issues 7 and 12, met or missed, for the scenarios that ran.
fn targets(
    out: &mut String,
    args: &Args,
    target: &Target,
    results: &Results,
    composed: Option<f64>,
) {
    let mut lines = Vec::new();
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    if args.runs("get-organisation") && args.runs("health") {
        // On SQLite (in the process) against Health/Check, on PostgreSQL against the
        // composed ceiling of a round trip and a primary-key select.
        let (ceiling, rate, wanted) = match composed {
            None => ("Health/Check", results.health.rate, 0.6),
            Some(composed) => ("composed ceiling", composed, 0.8),
        };
        let ratio = results.get_organisation.rate / rate;
        lines.push(format!(
            "GetOrganisation ≥ {wanted} × {ceiling} ({}): {ratio:.2} — {}",
            target.backend,
            verdict(ratio >= wanted)
        ));
    }
    for (name, scenario, measured) in [
        ("GetTicket (agent)", "get-ticket", &results.get_ticket),
        (
            "GetTicket (customer)",
            "get-ticket-customer",
            &results.get_ticket_customer,
        ),
    ] {
        if !(args.runs(scenario) && args.runs("health")) {
            continue;
        }
        let (ceiling, rate) = match composed {
            None => ("Health/Check", results.health.rate),
            Some(composed) => ("composed ceiling", composed),
        };
        let ratio = measured.rate / rate;
        lines.push(format!(
            "{name} ≥ 0.6 × {ceiling} ({}): {ratio:.2} — {}",
            target.backend,
            verdict(ratio >= 0.6)
        ));
    }
    if let Some(lists) = &results.lists {
        let page = lists.first_page.p50.max(lists.deep_page.p50);
        lines.push(format!(
            "a page of customers p50 ≤ 2 ms ({}): {} — {}",
            target.backend,
            ms(page),
            verdict(page <= Duration::from_millis(2))
        ));
        lines.push(format!(
            "a search with one hit p50 ≤ 10 ms ({}): {} — {}",
            target.backend,
            ms(lists.search_one.p50),
            verdict(lists.search_one.p50 <= Duration::from_millis(10))
        ));
    }
    if args.runs("list-tickets") {
        let fast = results.list_fast.rate;
        lines.push(format!(
            "ListTickets ≥ 100,000 tickets/s: {} — {}",
            rate(fast),
            verdict(fast >= 100_000.0)
        ));
        if let Some(peak) = results.list_slow.peak_memory {
            lines.push(format!(
                "server under 200 MB while a slow reader streams {} tickets: {} — {}",
                results.list_slow.count,
                memory(Some(peak)),
                verdict(peak < 200 * 1000 * 1000)
            ));
        }
    }
    if let Some(measured) = &results.feed_delay {
        lines.push(format!(
            "commit to delivery p99 ≤ 100 ms across two replicas, writes at half the CreateTicket rate: {} — {}",
            ms(measured.p99),
            verdict(measured.p99 <= Duration::from_millis(100) && measured.errors == 0)
        ));
    }
    if args.runs("watch-changes") {
        let rate_now = results.watch_changes.rate;
        lines.push(format!(
            "WatchChanges to one follower ≥ 50,000 changes/s ({}): {} — {}",
            target.backend,
            rate(rate_now),
            verdict(rate_now >= 50_000.0)
        ));
    }
    if args.runs("watch") {
        let p99 = results.watch.p99;
        lines.push(format!(
            "escalation events p99 ≤ 100 ms after the deadline ({} watchers): {} — {}",
            results.watchers,
            ms(p99),
            verdict(p99 <= Duration::from_millis(100) && results.watch.errors == 0)
        ));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nTargets:\n");
    for line in lines {
        let _ = writeln!(out, "- {line}");
    }
}

/// The two rows of the streamed list.
fn list_rows(out: &mut String, results: &Results) {
    let _ = writeln!(
        out,
        "| ListTickets, reader keeping up | {} tickets/s | first after {} | all after {} | | {} tickets | {} |",
        rate(results.list_fast.rate),
        ms(results.list_fast.p50),
        ms(results.list_fast.p99),
        results.list_fast.count,
        memory(results.list_fast.peak_memory)
    );
    let _ = writeln!(
        out,
        "| ListTickets, reader at half pace | {} tickets/s | | all after {} | | {} tickets | {} |",
        rate(results.list_slow.rate),
        ms(results.list_slow.p99),
        results.list_slow.count,
        memory(results.list_slow.peak_memory)
    );
}
