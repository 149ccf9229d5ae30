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
    row(
        &mut out,
        "Health/Check (ceiling: tonic here)",
        "req/s",
        &results.health,
        "1.00".into(),
    );
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
        Some(composed) => format!(
            "{:.2} × Health, {:.2} × composed",
            m.rate / health,
            m.rate / composed
        ),
        None => format!("{:.2} × Health", m.rate / health),
    };
    row(
        &mut out,
        "GetOrganisation (agent)",
        "req/s",
        &results.get_organisation,
        versus(&results.get_organisation),
    );
    row(
        &mut out,
        "GetTicket (agent)",
        "req/s",
        &results.get_ticket,
        versus(&results.get_ticket),
    );
    row(
        &mut out,
        "CreateTicket (agent)",
        "req/s",
        &results.create_ticket,
        versus(&results.create_ticket),
    );
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
    out
}
