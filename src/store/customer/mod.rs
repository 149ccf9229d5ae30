//! Customers, their email addresses and their secondary organisations: reads and rows here,
//! writes in `write`.

mod write;

pub use write::CustomerCascade;
pub(crate) use write::{
    deactivate_customers_of, delete_customer, lock_customers, refuse_open_tickets, update_customer,
};

use std::collections::BTreeMap;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QueryResult, QuerySelect,
    sea_query::{Expr, LikeExpr, Query},
};
use uuid::Uuid;

use super::{
    Cursor, Scope, Store, ValidityCondition, after, after_time,
    entities::{customer, customer_email, customer_organisation},
    fold_case, timestamp,
};
use crate::{
    error::Result,
    model::{Customer, CustomerFilter, CustomerOrder, Validity, email_domain, name_key},
};

/// The column a customer order sorts by.
trait KeyColumn {
    fn key_column(self) -> customer::Column;
}

impl KeyColumn for CustomerOrder {
    fn key_column(self) -> customer::Column {
        match self {
            Self::Name => customer::Column::NameKey,
            Self::Email => customer::Column::EmailKey,
            Self::UpdateTime => customer::Column::UpdateTime,
        }
    }
}

impl Store {
    /// The customer with `id` within `scope`, whatever its validity.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn customer(&self, scope: &Scope, id: Uuid) -> Result<Option<Customer>> {
        // One statement, not three, on the path of every read of one row by its key: a
        // customer is read on most paths (a ticket created for it, its rights, a comment's
        // author), and every statement is a round trip.
        if !scope.admits_customer(id) {
            return Ok(None);
        }
        Ok(self
            .fetch_one(by_id_sql(self.backend()), super::RowKey::Id(id))
            .await?
            .map(|row| WithRelations::from_query_result(&row, "")?.customer())
            .transpose()?
            .filter(|customer| scope.admits_filed(customer.directory_id)))
    }

    /// The customer within `scope` with this primary or secondary email address
    /// (case-insensitive).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn customer_by_email(&self, scope: &Scope, email: &str) -> Result<Option<Customer>> {
        if !super::storable(email) {
            return Ok(None);
        }
        let address = customer_email::Entity::find_by_id(fold_case(email))
            .filter(scope.customers(customer_email::Column::CustomerId))
            .one(self.reader())
            .await?;
        match address {
            Some(address) => self.customer(scope, address.customer_id).await,
            None => Ok(None),
        }
    }

    /// Of customers `ids`, those within `scope` (that exist).
    #[tracing::instrument(skip(self, ids), level = "debug", err(level = "debug"))]
    pub(super) async fn readable_customers(
        &self,
        scope: &Scope,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>> {
        Ok(customer::Entity::find()
            .select_only()
            .column(customer::Column::Id)
            .filter(customer::Column::Id.is_in(ids.iter().copied()))
            .filter(scope.customers(customer::Column::Id))
            .filter(scope.filed(customer::Column::DirectoryId))
            .into_tuple::<Uuid>()
            .all(self.reader())
            .await?)
    }

    /// The customer within `scope` with this login (case-insensitive).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn customer_by_login(&self, scope: &Scope, login: &str) -> Result<Option<Customer>> {
        if !super::storable(login) {
            return Ok(None);
        }
        let select = customer::Entity::find()
            .filter(scope.customers(customer::Column::Id))
            .filter(scope.filed(customer::Column::DirectoryId))
            .filter(customer::Column::LoginKey.eq(fold_case(login)));
        Ok(self.read_customers(select.limit(1)).await?.pop())
    }

    /// The customer with this external id.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn customer_by_external_id(&self, external_id: &str) -> Result<Option<Customer>> {
        if !super::storable(external_id) {
            return Ok(None);
        }
        let select = customer::Entity::find().filter(customer::Column::ExternalId.eq(external_id));
        Ok(self.read_customers(select.limit(1)).await?.pop())
    }

    /// Up to `limit` customers within `scope` matching `filter` in `order`, after `cursor`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_customers(
        &self,
        scope: &Scope,
        filter: &CustomerFilter,
        order: CustomerOrder,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Customer>> {
        let statement = list_query(self.backend(), scope, filter, order, cursor, limit)?;
        WithRelations::find_by_statement(statement)
            .all(self.reader())
            .await?
            .into_iter()
            .map(WithRelations::customer)
            .collect()
    }

    /// Valid customers within `scope` without organisation whose primary email domain is one
    /// of `domains` or lies under one.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn unassigned_customers_in(
        &self,
        scope: &Scope,
        domains: &[String],
    ) -> Result<Vec<Customer>> {
        if domains.is_empty() {
            return Ok(Vec::new());
        }
        let mut in_domains =
            Condition::any().add(customer::Column::EmailDomain.is_in(domains.iter().cloned()));
        for domain in domains {
            // Domains are letters, digits, hyphens and dots: nothing to escape.
            in_domains = in_domains
                .add(customer::Column::EmailDomain.like(LikeExpr::new(format!("%.{domain}"))));
        }
        let select = customer::Entity::find()
            .filter(customer::Column::OrganisationId.is_null())
            .filter(customer::Column::Validity.eq(Validity::Valid.as_str()))
            .filter(in_domains)
            .filter(scope.customers(customer::Column::Id))
            .filter(scope.filed(customer::Column::DirectoryId))
            .order_by_asc(customer::Column::Id);
        self.read_customers(select).await
    }

    /// The customers `select` reads, each with its secondary addresses and organisations, in
    /// one statement.
    pub(super) async fn read_customers(
        &self,
        select: sea_orm::Select<customer::Entity>,
    ) -> Result<Vec<Customer>> {
        with_relation_columns(select, self.backend())
            .into_model::<WithRelations>()
            .all(self.reader())
            .await?
            .into_iter()
            .map(WithRelations::customer)
            .collect()
    }
}

/// The column of [`Store::customer`] that lists the secondary addresses (a JSON array).
const SECONDARY_EMAILS: &str = "secondary_emails";
/// The column of [`Store::customer`] that lists the secondary organisations (ids, by commas).
const SECONDARY_ORGANISATIONS: &str = "secondary_organisation_ids";

/// The statement of one page of customers with their addresses and organisations (see
/// [`Store::list_customers`]): one statement, not one for the rows and one for each relation.
pub(super) fn list_query(
    backend: DbBackend,
    scope: &Scope,
    filter: &CustomerFilter,
    order: CustomerOrder,
    cursor: Option<&Cursor>,
    limit: u64,
) -> Result<sea_orm::Statement> {
    let key = order.key_column();
    let mut condition =
        super::search::validity(backend, filter.validity, &filter.text, "customers")
            .unwrap_or_else(|| filter.validity.condition(customer::Column::Validity))
            .add(scope.customers(customer::Column::Id))
            .add(scope.filed(customer::Column::DirectoryId));
    if let Some(organisation_id) = filter.organisation_id {
        condition = condition.add(
            Condition::any()
                .add(customer::Column::OrganisationId.eq(organisation_id))
                .add(
                    customer::Column::Id.in_subquery(
                        Query::select()
                            .column(customer_organisation::Column::CustomerId)
                            .from(customer_organisation::Entity)
                            .and_where(
                                customer_organisation::Column::OrganisationId.eq(organisation_id),
                            )
                            .to_owned(),
                    ),
                ),
        );
    }
    if let Some(fragment) = &filter.text {
        condition = condition.add(super::search::customers(backend, fragment));
    }
    if let Some(customer_type) = &filter.customer_type {
        condition = condition.add(customer::Column::CustomerType.eq(customer_type.as_str()));
    }
    if let Some((key, value)) = &filter.custom_field {
        condition = condition.add(super::custom_field_is(backend, "customers", key, value));
    }
    if let Some(since) = filter.updated_since {
        condition = condition.add(customer::Column::UpdateTime.gte(since));
    }
    // Found by a fragment and listed by name: the most relevant first.
    let rank = filter
        .ranked(order)
        .and_then(|fragment| super::search::rank(customer::Column::Search, fragment));
    if let Some(cursor) = cursor {
        condition = condition.add(match (&rank, order) {
            (Some(rank), _) => {
                super::search::after_ranked(rank.clone(), key, customer::Column::Id, cursor)?
            }
            (None, CustomerOrder::UpdateTime) => after_time(key, customer::Column::Id, cursor)?,
            (None, _) => after(key, customer::Column::Id, cursor),
        });
    }
    let mut query = with_relation_columns(customer::Entity::find(), backend).filter(condition);
    if let Some(rank) = rank {
        query = query.order_by(rank, sea_orm::Order::Asc);
    }
    let query = query.order_by_asc(key).order_by_asc(customer::Column::Id);
    Ok(super::limited(&query, backend, limit))
}

/// The statement that reads one customer by id with its secondary addresses and
/// organisations.
fn by_id_sql(backend: DbBackend) -> &'static str {
    static SQL: super::PerBackend = super::PerBackend::new();
    SQL.get(backend, |db| {
        with_relation_columns(customer::Entity::find(), db)
            .filter(customer::Column::Id.eq(Uuid::nil()))
    })
}

/// `select` with the columns of its customers' secondary addresses and organisations.
fn with_relation_columns(
    select: sea_orm::Select<customer::Entity>,
    backend: DbBackend,
) -> sea_orm::Select<customer::Entity> {
    let (emails, organisations) = relation_columns(backend);
    select
        .column_as(Expr::cust(emails), SECONDARY_EMAILS)
        .column_as(Expr::cust(organisations), SECONDARY_ORGANISATIONS)
}

/// The subqueries of a customer's secondary addresses and organisations. SQLite keeps a UUID
/// as 16 bytes; hex gives the simple form `Uuid::parse_str` reads.
fn relation_columns(backend: DbBackend) -> (&'static str, &'static str) {
    match backend {
        DbBackend::Postgres => (
            "(SELECT json_agg(e.email)::text FROM customer_emails e \
             WHERE e.customer_id = customers.id AND NOT e.is_primary)",
            "(SELECT string_agg(m.organisation_id::text, ',') FROM customer_organisations m \
             WHERE m.customer_id = customers.id)",
        ),
        _ => (
            "(SELECT json_group_array(e.email) FROM customer_emails e \
             WHERE e.customer_id = customers.id AND e.is_primary = 0)",
            "(SELECT group_concat(hex(m.organisation_id), ',') FROM customer_organisations m \
             WHERE m.customer_id = customers.id)",
        ),
    }
}

/// A customer's row with its secondary addresses and organisations, as one statement reads
/// them. Read by column position, as organisations and tickets are: sea-orm's own models look
/// every column up by a name formatted anew for each column of each row. `Entity::find()`
/// selects the columns in the order of [`customer::Column`] (a column's position is its
/// discriminant), and the two relation columns follow them.
struct WithRelations {
    row: customer::Model,
    emails: Option<String>,
    organisations: Option<String>,
}

/// The position of the first column after the row's own.
const RELATIONS_AT: usize = customer::Column::SourceSeen as usize + 1;

impl FromQueryResult for WithRelations {
    fn from_query_result(row: &QueryResult, _pre: &str) -> Result<Self, DbErr> {
        use customer::Column as C;
        let at = |column: C| column as usize;
        Ok(Self {
            row: customer::Model {
                id: row.try_get_by_index(at(C::Id))?,
                email: row.try_get_by_index(at(C::Email))?,
                email_key: row.try_get_by_index(at(C::EmailKey))?,
                email_domain: row.try_get_by_index(at(C::EmailDomain))?,
                login: row.try_get_by_index(at(C::Login))?,
                login_key: row.try_get_by_index(at(C::LoginKey))?,
                first_name: row.try_get_by_index(at(C::FirstName))?,
                last_name: row.try_get_by_index(at(C::LastName))?,
                name_key: row.try_get_by_index(at(C::NameKey))?,
                title: row.try_get_by_index(at(C::Title))?,
                phone: row.try_get_by_index(at(C::Phone))?,
                mobile: row.try_get_by_index(at(C::Mobile))?,
                organisation_id: row.try_get_by_index(at(C::OrganisationId))?,
                customer_type: row.try_get_by_index(at(C::CustomerType))?,
                custom_fields: row.try_get_by_index(at(C::CustomFields))?,
                external_id: row.try_get_by_index(at(C::ExternalId))?,
                validity: row.try_get_by_index(at(C::Validity))?,
                search: row.try_get_by_index(at(C::Search))?,
                create_time: row.try_get_by_index(at(C::CreateTime))?,
                update_time: row.try_get_by_index(at(C::UpdateTime))?,
                version: row.try_get_by_index(at(C::Version))?,
                directory_id: row.try_get_by_index(at(C::DirectoryId))?,
                source: row.try_get_by_index(at(C::Source))?,
                source_key: row.try_get_by_index(at(C::SourceKey))?,
                source_seen: row.try_get_by_index(at(C::SourceSeen))?,
            },
            emails: row.try_get_by_index(RELATIONS_AT)?,
            organisations: row.try_get_by_index(RELATIONS_AT + 1)?,
        })
    }
}

impl WithRelations {
    /// The customer, its lists in the order the other reads give them (addresses by their
    /// case-folded form, organisations by id).
    fn customer(self) -> Result<Customer> {
        let mut emails: Vec<String> = match self.emails.as_deref() {
            Some(listed) => super::decode_json(listed, "customer secondary emails")?,
            None => Vec::new(),
        };
        emails.sort_by_cached_key(|email| fold_case(email));
        let mut organisations = self
            .organisations
            .iter()
            .flat_map(|listed| listed.split(','))
            .map(|id| {
                Uuid::parse_str(id).map_err(|e| {
                    crate::error::Error::Internal(format!(
                        "stored secondary organisation unreadable: {e}"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        organisations.sort();
        from_row(self.row, emails, organisations)
    }
}

/// Every address of `customer`, case-folded, with whether it is the primary one.
fn addresses(customer: &Customer) -> Vec<(String, bool)> {
    std::iter::once((fold_case(&customer.email), true))
        .chain(
            customer
                .secondary_emails
                .iter()
                .map(|email| (fold_case(email), false)),
        )
        .collect()
}

/// The rows of `customer_emails` for `customer`.
pub(crate) fn address_rows(
    customer: &Customer,
) -> impl Iterator<Item = customer_email::ActiveModel> + '_ {
    std::iter::once((&customer.email, true))
        .chain(customer.secondary_emails.iter().map(|email| (email, false)))
        .map(|(email, is_primary)| customer_email::ActiveModel {
            email_key: Set(fold_case(email)),
            email: Set(email.clone()),
            customer_id: Set(customer.id),
            is_primary: Set(is_primary),
        })
}

pub(crate) fn active_model(customer: &Customer) -> customer::ActiveModel {
    customer::ActiveModel {
        id: Set(customer.id),
        email: Set(customer.email.clone()),
        email_key: Set(fold_case(&customer.email)),
        email_domain: Set(email_domain(&customer.email).to_owned()),
        login: Set(customer.login.clone()),
        login_key: Set(customer.login.as_deref().map(fold_case)),
        first_name: Set(customer.first_name.clone()),
        last_name: Set(customer.last_name.clone()),
        name_key: Set(name_key(customer)),
        title: Set(customer.title.clone()),
        phone: Set(customer.phone.clone()),
        mobile: Set(customer.mobile.clone()),
        organisation_id: Set(customer.organisation_id),
        customer_type: Set(customer.customer_type.clone()),
        custom_fields: Set(super::encode_json(&customer.custom_fields)),
        external_id: Set(customer.external_id.clone()),
        validity: Set(customer.validity.as_str().to_owned()),
        search: Set(crate::model::customer_document(customer)),
        create_time: Set(customer.create_time.as_microsecond()),
        update_time: Set(customer.update_time.as_microsecond()),
        directory_id: Set(customer.directory_id),
        source: Set(customer.source.as_ref().map(|link| link.name.clone())),
        source_key: Set(customer.source.as_ref().map(|link| link.key.clone())),
        // Written by the syncs alone (`mark_source_seen`).
        source_seen: sea_orm::ActiveValue::NotSet,
        version: Set(customer.version),
    }
}

fn from_row(
    row: customer::Model,
    secondary_emails: Vec<String>,
    secondary_organisation_ids: Vec<Uuid>,
) -> Result<Customer> {
    let custom_fields: BTreeMap<String, String> =
        super::decode_json(&row.custom_fields, "customer custom_fields")?;
    Ok(Customer {
        id: row.id,
        validity: super::validity(&row.validity)?,
        email: row.email,
        secondary_emails,
        login: row.login,
        first_name: row.first_name,
        last_name: row.last_name,
        title: row.title,
        phone: row.phone,
        mobile: row.mobile,
        organisation_id: row.organisation_id,
        secondary_organisation_ids,
        customer_type: row.customer_type,
        custom_fields,
        external_id: row.external_id,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
        directory_id: row.directory_id,
        source: row
            .source
            .zip(row.source_key)
            .map(|(name, key)| crate::model::SourceLink { name, key }),
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::Iterable;

    use super::*;

    /// [`WithRelations`] reads a column at its discriminant and the relations after the last
    /// one: that must be each column's place among the columns `Entity::find()` selects.
    #[test]
    fn a_customer_columns_position_is_its_discriminant() {
        crate::store::assert_columns_selected_in_discriminant_order::<customer::Entity>(|c| {
            c as usize
        });
        assert_eq!(customer::Column::iter().count(), RELATIONS_AT);
    }

    /// A page's LIMIT is in its text, not bound, so that PostgreSQL keeps one plan for it
    /// (`store::limited`; the plan test reads that plan).
    #[test]
    fn a_pages_limit_is_written_into_its_statement() {
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let statement = list_query(
                backend,
                &Scope::everything(),
                &CustomerFilter::default(),
                CustomerOrder::Name,
                None,
                21,
            )
            .expect("query");
            assert!(statement.sql.ends_with(" LIMIT 21"), "{}", statement.sql);
            let bound = statement.values.map(|values| values.0).unwrap_or_default();
            assert!(
                !bound.contains(&sea_orm::Value::BigUnsigned(Some(21))),
                "{bound:?}"
            );
        }
    }
}
