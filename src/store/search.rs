//! Finding customers and organisations by a fragment of text through an index: a trigram
//! index on the search documents (`pg_trgm` on PostgreSQL, an FTS5 trigram table on SQLite),
//! or, for a fragment shorter than a trigram, a range of a sort key's index.

use sea_orm::{
    ColumnTrait, Condition, DbBackend,
    sea_query::{
        Alias, CaseStatement, Expr, ExprTrait, Func, Query, SelectStatement, SimpleExpr, UnionType,
    },
};

use sea_orm::{EntityTrait, QueryFilter, QuerySelect, TransactionTrait};

use super::{
    Store,
    entities::{customer, customer_organisation, organisation},
    escape_like, pattern,
};
use crate::{
    error::Result,
    model::{
        Fragment, Validity, ValidityFilter, customer_fields_document, organisation_fields_document,
    },
};

/// How many documents one transaction writes when they are filled in.
const REFILL_BATCH: u64 = 500;

impl Store {
    /// Writes the search document of every customer and organisation that has none (a
    /// migration emptied them when their form changed), a batch at a time. A document is
    /// never empty once written, so this ends, and does nothing once done.
    pub(crate) async fn refill_search_documents(&self) -> Result<()> {
        loop {
            let rows = customer::Entity::find()
                .filter(customer::Column::Search.eq(""))
                .limit(REFILL_BATCH)
                .all(&self.db)
                .await?;
            if rows.is_empty() {
                break;
            }
            let tx = self.db.begin().await?;
            for row in rows {
                let document = customer_fields_document(
                    &row.first_name,
                    &row.last_name,
                    &row.email,
                    row.login.as_deref().unwrap_or_default(),
                    &row.phone,
                    &row.mobile,
                );
                customer::Entity::update_many()
                    .col_expr(customer::Column::Search, Expr::value(document))
                    .filter(customer::Column::Id.eq(row.id))
                    .exec(&tx)
                    .await?;
            }
            tx.commit().await?;
        }
        loop {
            let rows = organisation::Entity::find()
                .filter(organisation::Column::Search.eq(""))
                .limit(REFILL_BATCH)
                .all(&self.db)
                .await?;
            if rows.is_empty() {
                return Ok(());
            }
            let tx = self.db.begin().await?;
            for row in rows {
                let domains: Vec<String> =
                    super::decode_json(&row.email_domains, "organisation email_domains")?;
                let document =
                    organisation_fields_document(&row.customer_id, &row.name, &row.city, &domains);
                organisation::Entity::update_many()
                    .col_expr(organisation::Column::Search, Expr::value(document))
                    .filter(organisation::Column::Id.eq(row.id))
                    .exec(&tx)
                    .await?;
            }
            tx.commit().await?;
        }
    }
}

/// The condition of the customers `fragment` finds: in their own document, or through an
/// organisation (primary or secondary) whose document holds it; a short fragment at the
/// start of the last name or the email address.
pub(crate) fn customers(backend: DbBackend, fragment: &Fragment) -> Condition {
    match fragment {
        Fragment::Anywhere(text) => {
            // One set of ids, so that the customers are read by their key: a disjunction of
            // the three would have PostgreSQL scan the table and test each row.
            let organisations = found(backend, Searched::Organisations, text);
            let mut ids = found(backend, Searched::Customers, text);
            ids.union(
                UnionType::Distinct,
                Query::select()
                    .column(customer::Column::Id)
                    .from(customer::Entity)
                    .and_where(customer::Column::OrganisationId.in_subquery(organisations.clone()))
                    .to_owned(),
            )
            .union(
                UnionType::Distinct,
                Query::select()
                    .column(customer_organisation::Column::CustomerId)
                    .from(customer_organisation::Entity)
                    .and_where(
                        customer_organisation::Column::OrganisationId.in_subquery(organisations),
                    )
                    .to_owned(),
            );
            let found = among(backend, customer::Entity, customer::Column::Id, ids);
            Condition::all().add(found)
        }
        Fragment::Start(text) => Condition::any()
            .add(starts(customer::Column::NameKey, text))
            .add(starts(customer::Column::EmailKey, text)),
    }
}

/// The condition of the organisations `fragment` finds: in their document (code, name, city,
/// domains); a short fragment at the start of the name or the code.
pub(crate) fn organisations(backend: DbBackend, fragment: &Fragment) -> Condition {
    match fragment {
        Fragment::Anywhere(text) => Condition::all().add(in_document(backend, text)),
        Fragment::Start(text) => Condition::any()
            .add(starts(organisation::Column::NameKey, text))
            .add(starts(organisation::Column::CustomerIdKey, text)),
    }
}

/// On SQLite, for a fragment found anywhere, the validity condition of a list written so
/// that no index serves it (`+validity`): SQLite keeps no statistics here and would walk the
/// validity index, every valid row, and test each against the few the trigram index found,
/// instead of reading those few by their key. `None` where the plain condition is right.
pub(crate) fn validity(
    backend: DbBackend,
    filter: ValidityFilter,
    fragment: &Option<Fragment>,
    table: &str,
) -> Option<Condition> {
    if backend != DbBackend::Sqlite || !matches!(fragment, Some(Fragment::Anywhere(_))) {
        return None;
    }
    let column = || Expr::cust(format!("+\"{table}\".\"validity\""));
    Some(match filter {
        ValidityFilter::ValidOnly => Condition::all().add(column().eq(Validity::Valid.as_str())),
        ValidityFilter::All => Condition::all(),
        ValidityFilter::Exactly(validity) => Condition::all().add(column().eq(validity.as_str())),
    })
}

/// How well a row's document (`document`) matches a fragment found anywhere, as
/// [`Fragment::rank`] says: the first key of the relevance order. `None` for a short one.
pub(crate) fn rank(document: impl ColumnTrait, fragment: &Fragment) -> Option<SimpleExpr> {
    let Fragment::Anywhere(text) = fragment else {
        return None;
    };
    let text = escape_like(text);
    Some(
        CaseStatement::new()
            .case(
                Expr::col(document).like(pattern(&["%\n", &text, "\n%"])),
                Expr::val(0),
            )
            .case(
                Expr::col(document).like(pattern(&["%\n", &text, "%"])),
                Expr::val(1),
            )
            .finally(Expr::val(2))
            .into(),
    )
}

#[derive(Clone, Copy)]
enum Searched {
    Customers,
    Organisations,
}

/// Organisations whose document holds `text`, by the trigram index.
fn in_document(backend: DbBackend, text: &str) -> SimpleExpr {
    let ids = found(backend, Searched::Organisations, text);
    among(backend, organisation::Entity, organisation::Column::Id, ids)
}

/// `id` of `table` is one of `ids`. On PostgreSQL as an array (`id = ANY(ARRAY(…))`), which it
/// reads by key: as `IN (…)` it joins what it found to the table, and once it expects many
/// hits it hashes them against a scan of the whole table (264 of the 386 ms of a search with
/// 11,000 hits among a million customers; 39 ms as an array, BENCHMARKS.md).
fn among(
    backend: DbBackend,
    table: impl sea_orm::Iden + 'static,
    id: impl ColumnTrait,
    ids: SelectStatement,
) -> SimpleExpr {
    match backend {
        DbBackend::Postgres => Expr::col((table, id)).eq(Func::cust("ANY").arg(
            Func::cust("ARRAY").arg(Expr::SubQuery(
                None,
                Box::new(sea_orm::sea_query::SubQueryStatement::SelectStatement(ids)),
            )),
        )),
        _ => id.in_subquery(ids),
    }
}

/// The ids of the rows whose document holds `text`.
fn found(backend: DbBackend, searched: Searched, text: &str) -> SelectStatement {
    let (table, id, search) = match searched {
        Searched::Customers => ("customers", "customer_id", "customer_search"),
        Searched::Organisations => ("organisations", "organisation_id", "organisation_search"),
    };
    match backend {
        // The trigram index serves LIKE with a pattern of at least one trigram.
        DbBackend::Postgres => Query::select()
            .column(Alias::new("id"))
            .from(Alias::new(table))
            .and_where(Expr::col(Alias::new("search")).like(pattern(&[
                "%",
                &escape_like(text),
                "%",
            ])))
            .to_owned(),
        // The FTS5 trigram table matches a quoted string as a substring.
        _ => Query::select()
            .column(Alias::new(id))
            .from(Alias::new(format!("{search}_rows")))
            .and_where(
                Expr::col(Alias::new("rowid")).in_subquery(
                    Query::select()
                        .column(Alias::new("rowid"))
                        .from(Alias::new(search))
                        .and_where(Expr::cust_with_values(
                            format!("{search} MATCH ?"),
                            [format!("\"{}\"", text.replace('"', "\"\""))],
                        ))
                        .to_owned(),
                ),
            )
            .to_owned(),
    }
}

/// `column` starts with `text`: a range of its index (`text` ≤ value < the next string).
fn starts(column: impl ColumnTrait + Copy, text: &str) -> Condition {
    let mut condition = Condition::all().add(column.gte(text));
    let mut chars: Vec<char> = text.chars().collect();
    if let Some(last) = chars.pop()
        && let Some(next) = char::from_u32(u32::from(last) + 1)
    {
        chars.push(next);
        condition = condition.add(column.lt(chars.into_iter().collect::<String>()));
    }
    condition
}

/// The condition of the rows after `cursor` in relevance order (`rank`, then `key`, then
/// `id`).
pub(crate) fn after_ranked(
    rank: SimpleExpr,
    key: impl ColumnTrait,
    id: impl ColumnTrait,
    cursor: &super::Cursor,
) -> crate::error::Result<Condition> {
    let invalid = || crate::error::Error::invalid("page_token", "does not belong to this list");
    let (at, name) = cursor
        .key
        .split_once(crate::model::RANKED)
        .ok_or_else(invalid)?;
    let at: i32 = at.parse().map_err(|_| invalid())?;
    let rest = super::Cursor {
        key: name.to_owned(),
        id: cursor.id,
    };
    Ok(Condition::any().add(rank.clone().gt(at)).add(
        Condition::all()
            .add(rank.eq(at))
            .add(super::after(key, id, &rest)),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sea_orm::ActiveValue::Set;
    use uuid::Uuid;

    use super::*;
    use crate::model::{Customer, CustomerFilter, CustomerOrder, Validity};

    /// A database migrated before the documents changed form gets them written again when the
    /// server migrates, and the index finds its customers.
    #[tokio::test]
    async fn documents_of_an_older_form_are_written_again_on_migrate() {
        for (store, postgres) in crate::store::plans::stores().await {
            let now = jiff::Timestamp::now();
            let customer = Customer {
                id: Uuid::now_v7(),
                email: "j@example.com".into(),
                secondary_emails: Vec::new(),
                login: None,
                first_name: "Jürgen".into(),
                last_name: "Müller".into(),
                title: String::new(),
                phone: "+49 30 1234".into(),
                mobile: String::new(),
                organisation_id: None,
                secondary_organisation_ids: Vec::new(),
                customer_type: String::new(),
                custom_fields: BTreeMap::new(),
                external_id: None,
                validity: Validity::Valid,
                create_time: now,
                update_time: now,
                version: 1,
                directory_id: None,
                source: None,
            };
            // As the form before: lower-cased names, no phone.
            let mut row = crate::store::customer::active_model(&customer);
            row.search = Set("jürgen müller".into());
            customer::Entity::insert(row)
                .exec_without_returning(&store.db)
                .await
                .expect("insert");
            // Down past the search documents (migration 22) and what came after.
            store.migrate_down(3).await.expect("down");
            store
                .migrate()
                .await
                .expect("up, and the documents written");
            let stored = customer::Entity::find_by_id(customer.id)
                .one(&store.db)
                .await
                .expect("read")
                .expect("row");
            assert_eq!(stored.search, crate::model::customer_document(&customer));
            for text in ["muller", "4930"] {
                let filter = CustomerFilter {
                    text: Fragment::of(text),
                    ..Default::default()
                };
                let scope = crate::store::Scope::agent(None);
                let query = crate::store::customer::list_query(
                    store.backend(),
                    &scope,
                    &filter,
                    CustomerOrder::Name,
                    None,
                    10,
                )
                .expect("query");
                let rows = sea_orm::ConnectionTrait::query_all_raw(&store.db, query)
                    .await
                    .expect("search");
                assert_eq!(rows.len(), 1, "{:?}: {text}", store.backend());
            }
            crate::store::plans::drop_database(store, postgres).await;
        }
    }
}
