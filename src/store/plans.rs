//! The query plans of the customer and organisation lists, read from each database: a page
//! is read in order from an index, never by scanning or sorting the table. A planner that
//! changes its mind (as one once did for the ticket list) fails here, not in production.
//!
//! SQLite plans as it would for any table (it keeps no statistics here); PostgreSQL is asked
//! with sequential scans and sorts priced out (`enable_seqscan`, `enable_sort` off), so that a
//! plan still holding one shows that no index serves the query. An organisation's customers
//! (its primary and secondary members) are found through the membership indexes and then
//! sorted: that sorts one organisation's customers, which is allowed; a scan is not.

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, sea_query::QueryBuilder};
use uuid::Uuid;

use super::{Cursor, Scope, Store, StoreOptions, customer, organisation};
use crate::model::{
    CustomerFilter, CustomerOrder, OrganisationFilter, OrganisationOrder, Validity, ValidityFilter,
};

/// What a plan may do besides reading an index in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum May {
    /// Nothing else.
    ReadInOrder,
    /// Sort what an index found (not the table).
    SortFound,
}

/// A migrated store on each database the tests have: SQLite in memory, and PostgreSQL in a
/// database of its own when `CLIENTELE_TEST_POSTGRES_URL` is set.
pub(super) async fn stores() -> Vec<(Store, Option<(String, String)>)> {
    let sqlite = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("in-memory database");
    sqlite.migrate().await.expect("migrate");
    let mut stores = vec![(sqlite, None)];
    if let Some(admin) = std::env::var("CLIENTELE_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
    {
        let name = format!("clientele_plans_{}", Uuid::now_v7().simple());
        let connection = sea_orm::Database::connect(&admin)
            .await
            .expect("CLIENTELE_TEST_POSTGRES_URL is reachable");
        connection
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        connection.close().await.expect("close");
        let mut url = url::Url::parse(&admin).expect("url");
        url.set_path(&name);
        let store = Store::connect(url.as_str(), &StoreOptions::default())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        stores.push((store, Some((admin, name))));
    }
    stores
}

/// The plan of `statement` on `store`'s database, one line per step.
async fn plan(store: &Store, statement: Statement) -> Vec<String> {
    let sql = statement.to_string();
    let tx = store.db.begin().await.expect("begin");
    let rows = match store.backend() {
        DbBackend::Postgres => {
            for setting in ["enable_seqscan", "enable_sort"] {
                tx.execute_unprepared(&format!("SET LOCAL {setting} = off"))
                    .await
                    .expect("set");
            }
            let explain = |sql: String| {
                let tx = &tx;
                async move {
                    tx.query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
                        .await
                        .expect("explain")
                        .iter()
                        .map(|row| row.try_get_by_index::<String>(0).expect("plan line"))
                        .collect::<Vec<String>>()
                }
            };
            // The plan for these values, and the generic plan the server keeps for the
            // statement once it finds it no worse (a page's LIMIT is in its text for that).
            let mut lines = explain(format!("EXPLAIN {sql}")).await;
            let values = statement.values.map(|values| values.0).unwrap_or_default();
            let types: Vec<&str> = values.iter().map(postgres_type).collect();
            let arguments: Vec<String> = values
                .iter()
                .map(|value| sea_orm::sea_query::PostgresQueryBuilder.value_to_string(value))
                .collect();
            tx.execute_unprepared("SET LOCAL plan_cache_mode = force_generic_plan")
                .await
                .expect("set");
            let (types, arguments) = if values.is_empty() {
                (String::new(), String::new())
            } else {
                (
                    format!("({})", types.join(", ")),
                    format!("({})", arguments.join(", ")),
                )
            };
            tx.execute_unprepared(&format!("PREPARE page{types} AS {}", statement.sql))
                .await
                .expect("prepare");
            lines.push("-- generic plan --".into());
            lines.extend(explain(format!("EXPLAIN EXECUTE page{arguments}")).await);
            // A prepared statement outlives the transaction.
            tx.execute_unprepared("DEALLOCATE page")
                .await
                .expect("deallocate");
            lines
        }
        backend => tx
            .query_all_raw(Statement::from_string(
                backend,
                format!("EXPLAIN QUERY PLAN {sql}"),
            ))
            .await
            .expect("explain query plan")
            .iter()
            .map(|row| row.try_get::<String>("", "detail").expect("plan detail"))
            .collect(),
    };
    tx.rollback().await.expect("rollback");
    rows
}

/// The PostgreSQL type of a bound value, as the server binds it.
fn postgres_type(value: &sea_orm::Value) -> &'static str {
    use sea_orm::Value as V;
    match value {
        V::Bool(_) => "boolean",
        V::TinyInt(_) | V::SmallInt(_) | V::TinyUnsigned(_) => "smallint",
        V::Int(_) | V::SmallUnsigned(_) => "integer",
        V::BigInt(_) | V::Unsigned(_) | V::BigUnsigned(_) => "bigint",
        V::Float(_) => "real",
        V::Double(_) => "double precision",
        V::Bytes(_) => "bytea",
        V::Uuid(_) => "uuid",
        V::Json(_) => "jsonb",
        _ => "text",
    }
}

/// Fails unless `plan` reads `table` through an index and sorts at most what it found.
fn assert_served(backend: DbBackend, table: &str, plan: &[String], may: May, case: &str) {
    let text = plan.join("\n");
    let (scans, sorts) = match backend {
        DbBackend::Postgres => (
            plan.iter()
                .any(|line| line.contains(&format!("Seq Scan on {table}"))),
            plan.iter()
                .any(|line| line.trim_start().starts_with("->  Sort") || line.starts_with("Sort")),
        ),
        _ => (
            plan.iter()
                .any(|line| line.starts_with(&format!("SCAN {table}")) && !line.contains("USING")),
            plan.iter().any(|line| line.contains("TEMP B-TREE")),
        ),
    };
    assert!(!scans, "{backend:?}, {case}: scans {table}:\n{text}");
    if may == May::ReadInOrder {
        assert!(
            !sorts,
            "{backend:?}, {case}: sorts instead of reading an index in order:\n{text}"
        );
    }
}

fn validity_filters() -> [(ValidityFilter, &'static str); 3] {
    [
        (ValidityFilter::ValidOnly, "valid only"),
        (ValidityFilter::All, "all"),
        (ValidityFilter::Exactly(Validity::Invalid), "invalid only"),
    ]
}

#[tokio::test]
async fn every_customer_page_is_read_in_order_from_an_index() {
    let (text, time) = (
        Cursor {
            key: "m".into(),
            id: Uuid::now_v7(),
        },
        Cursor {
            key: "1796601600000000".into(),
            id: Uuid::now_v7(),
        },
    );
    let agent = Scope::agent(Some(vec![Uuid::now_v7()]));
    let everything = Scope::agent(None);
    let ranked = Cursor {
        key: crate::model::ranked_key(1, "muller\u{1}anna"),
        id: Uuid::now_v7(),
    };
    for (store, postgres) in stores().await {
        let backend = store.backend();
        for order in [
            CustomerOrder::Name,
            CustomerOrder::Email,
            CustomerOrder::UpdateTime,
        ] {
            let cursor = if order == CustomerOrder::UpdateTime {
                &time
            } else {
                &text
            };
            for (validity, name) in validity_filters() {
                for (scope, who) in [
                    (&everything, "everything"),
                    (&agent, "an agent's directories"),
                ] {
                    for page in [None, Some(cursor)] {
                        let filter = CustomerFilter {
                            validity,
                            ..Default::default()
                        };
                        let case = format!("{order:?}, {name}, {who}, after {page:?}");
                        let query = customer::list_query(backend, scope, &filter, order, page, 21)
                            .expect("query");
                        let plan = plan(&store, query).await;
                        assert_served(backend, "customers", &plan, May::ReadInOrder, &case);
                    }
                }
            }
        }
        // A type's customers, by name (the default order), valid only (the default filter).
        let filter = CustomerFilter {
            customer_type: Some("VIP".into()),
            ..Default::default()
        };
        let query =
            customer::list_query(backend, &everything, &filter, CustomerOrder::Name, None, 21)
                .expect("query");
        let plan_of_type = plan(&store, query).await;
        assert_served(
            backend,
            "customers",
            &plan_of_type,
            May::ReadInOrder,
            "a type",
        );
        // Found by a fragment (any validity, any order): through the trigram index, or a
        // short one through the ranges of the sort keys; what is found is then sorted.
        for (text, order) in [
            ("müller", CustomerOrder::Name),
            ("4930", CustomerOrder::Email),
            ("li", CustomerOrder::Name),
        ] {
            for (validity, name) in validity_filters() {
                let filter = CustomerFilter {
                    text: crate::model::Fragment::of(text),
                    validity,
                    ..Default::default()
                };
                for page in [None, Some(&ranked)] {
                    let page = page.filter(|_| filter.ranked(order).is_some());
                    let query = customer::list_query(backend, &agent, &filter, order, page, 21)
                        .expect("query");
                    let found = plan(&store, query).await;
                    let case = format!("text {text:?}, {order:?}, {name}, after {page:?}");
                    assert_served(backend, "customers", &found, May::SortFound, &case);
                    if text.len() >= 3 {
                        assert!(
                            found.iter().any(|line| line.contains("customer_search")
                                || line.contains("ix_customers_search")),
                            "{backend:?}, {case}: the trigram index is not used:\n{}",
                            found.join("\n")
                        );
                        // And the customers it found are read by their key, not by walking
                        // another index (every valid row) and testing each.
                        // On PostgreSQL they are compared as an array of ids, which it reads
                        // through the primary key once it has statistics (a join it would
                        // hash against the whole table when it expects many hits); the
                        // empty database of a test has none, so the form is what is checked.
                        let by_key = match backend {
                            DbBackend::Postgres => {
                                found.iter().any(|line| line.contains("(id = ANY ($"))
                            }
                            _ => found.iter().any(|line| {
                                line.starts_with("SEARCH customers") && line.contains("(id=?)")
                            }),
                        };
                        assert!(
                            by_key,
                            "{backend:?}, {case}: the customers found are not read by key:\n{}",
                            found.join("\n")
                        );
                    }
                }
            }
        }
        // An organisation's customers: found by index, then sorted.
        for order in [
            CustomerOrder::Name,
            CustomerOrder::Email,
            CustomerOrder::UpdateTime,
        ] {
            let filter = CustomerFilter {
                organisation_id: Some(Uuid::now_v7()),
                ..Default::default()
            };
            let query = customer::list_query(backend, &everything, &filter, order, None, 21)
                .expect("query");
            let found = plan(&store, query).await;
            assert_served(
                backend,
                "customers",
                &found,
                May::SortFound,
                "an organisation's customers",
            );
        }
        drop_database(store, postgres).await;
    }
}

#[tokio::test]
async fn every_organisation_page_is_read_in_order_from_an_index() {
    let (text, time) = (
        Cursor {
            key: "m".into(),
            id: Uuid::now_v7(),
        },
        Cursor {
            key: "1796601600000000".into(),
            id: Uuid::now_v7(),
        },
    );
    let agent = Scope::agent(Some(vec![Uuid::now_v7()]));
    let everything = Scope::agent(None);
    for (store, postgres) in stores().await {
        let backend = store.backend();
        for order in [
            OrganisationOrder::Name,
            OrganisationOrder::Code,
            OrganisationOrder::UpdateTime,
        ] {
            let cursor = if order == OrganisationOrder::UpdateTime {
                &time
            } else {
                &text
            };
            for (validity, name) in validity_filters() {
                for (scope, who) in [
                    (&everything, "everything"),
                    (&agent, "an agent's directories"),
                ] {
                    for page in [None, Some(cursor)] {
                        let filter = OrganisationFilter {
                            validity,
                            ..Default::default()
                        };
                        let case = format!("{order:?}, {name}, {who}, after {page:?}");
                        let query =
                            organisation::list_query(backend, scope, &filter, order, page, 21)
                                .expect("query");
                        let plan = plan(&store, query).await;
                        assert_served(backend, "organisations", &plan, May::ReadInOrder, &case);
                    }
                }
            }
        }
        for text in ["acme", "ac"] {
            let filter = OrganisationFilter {
                text: crate::model::Fragment::of(text),
                ..Default::default()
            };
            let query = organisation::list_query(
                backend,
                &agent,
                &filter,
                OrganisationOrder::Name,
                None,
                21,
            )
            .expect("query");
            let found = plan(&store, query).await;
            assert_served(backend, "organisations", &found, May::SortFound, text);
        }
        drop_database(store, postgres).await;
    }
}

/// Closes `store` and drops its PostgreSQL database, if it has one.
pub(super) async fn drop_database(store: Store, postgres: Option<(String, String)>) {
    store.close().await;
    if let Some((admin, name)) = postgres {
        let connection = sea_orm::Database::connect(&admin).await.expect("connect");
        connection
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .expect("drop database");
        connection.close().await.expect("close");
    }
}

/// On PostgreSQL the trigram indexes write every change into the index, not into a pending
/// list that every search would read whole (migration 24).
#[tokio::test]
async fn the_trigram_indexes_keep_no_pending_list() {
    for (store, postgres) in stores().await {
        if store.backend() == DbBackend::Postgres {
            let rows = store
                .db
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT relname::text, COALESCE(reloptions::text, '') FROM pg_class \
                     WHERE relname IN ('ix_customers_search', 'ix_organisations_search') \
                     ORDER BY relname",
                ))
                .await
                .expect("index options");
            let options: Vec<(String, String)> = rows
                .iter()
                .map(|row| {
                    (
                        row.try_get_by_index(0).expect("name"),
                        row.try_get_by_index(1).expect("options"),
                    )
                })
                .collect();
            assert_eq!(options.len(), 2, "{options:?}");
            for (index, options) in options {
                assert!(options.contains("fastupdate=off"), "{index}: {options}");
            }
        }
        drop_database(store, postgres).await;
    }
}
