#!/usr/bin/env bash
# Mutation testing of the access rules and the SLA maths: cargo-mutants changes the code of
# these files one small way at a time (a comparison turned round, a function returning a
# constant, a match arm deleted) and runs the tests that speak for them with nextest; a
# mutant that every test survives is a rule no test pins down.
#
#   scripts/mutants.sh            both parts
#   scripts/mutants.sh sla        business time only (unit tests; about half an hour here)
#   scripts/mutants.sh access     the rights and scopes (integration tests on SQLite; hours)
#
# Not run by CI: on two cores it takes hours. Run it after changing any of the files below,
# and kill each surviving mutant with a test or name it as equivalent in a comment beside
# the code ("equivalent mutant: ..."). Results land in mutants.out/ (git-ignored):
# missed.txt lists the survivors.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null 2>&1 || cargo install --locked cargo-mutants
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest

part="${1:-all}"
common=(--test-tool nextest --timeout-multiplier 3 --no-shuffle)

if [[ "$part" == all || "$part" == sla ]]; then
  # Business time is pure: its unit tests are the oracle.
  cargo mutants "${common[@]}" --output mutants.out/sla \
    --file src/domain/business_time.rs -- --lib
fi

if [[ "$part" == all || "$part" == access ]]; then
  # The rights are observed through the unit property test of domain/access/rights.rs (the
  # rules, the SQL and the in-memory check against each other) and through the API: the
  # integration tests that exercise them, on SQLite (the SQL they check is the same on
  # PostgreSQL, and this halves the time).
  cargo mutants "${common[@]}" --output mutants.out/access \
    --file src/store/scope.rs --file src/domain/access/rights.rs --file src/domain/rights.rs \
    --file src/domain/permission/mod.rs --file src/domain/permission/grants.rs \
    --file src/domain/permission/check.rs --file src/domain/permission/held.rs \
    -- --lib --test it \
    -E 'test(/::sqlite$/) and test(/^(permissions|ticket_rights|access|escalation|ticket_list|comments|tickets|auth|settings|merge)::/) | kind(lib)'
fi
