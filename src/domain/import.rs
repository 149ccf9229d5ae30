//! Imports: streams of rows that create or update records, one row at a time. A row is
//! written whole or not at all, and a bad row is reported without stopping the others.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use tokio::task::JoinSet;

use super::{
    customer::{Customers, OrganisationFields},
    customer_fields::{CustomerField, CustomerInput},
    fields::Violations,
    organisation::{OrganisationInput, Organisations},
    rights::MasterDataWriter,
};
use crate::domain::access::ServiceWork;
use crate::{
    error::{Error, FieldViolation, Result},
    model::{Organisation, Validity},
    retry,
    store::Inserted,
};

/// The most row errors a summary lists; `failed` counts them all.
pub const MAX_LISTED_ERRORS: usize = 10_000;

/// What happened to the rows of an import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Rows received.
    pub rows: u64,
    /// Rows that created a record.
    pub created: u64,
    /// Rows that changed a record.
    pub updated: u64,
    /// Rows that matched a record and changed nothing.
    pub unchanged: u64,
    /// Rows refused.
    pub failed: u64,
    /// The refused rows, at most [`MAX_LISTED_ERRORS`].
    pub errors: Vec<RowError>,
}

/// One refused row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The row's position in the stream, from 1.
    pub row: u64,
    /// Machine-readable reason.
    pub reason: String,
    /// For people.
    pub message: String,
    /// The wrong fields of the row.
    pub fields: Vec<FieldViolation>,
}

/// What one row did.
enum Outcome {
    Created,
    Updated,
    Unchanged,
}

impl ImportSummary {
    /// Counts the outcome of row `row` (already counted in `rows`). A database that is gone
    /// ends the import: every further row would fail the same way.
    fn count(&mut self, row: u64, outcome: Result<Outcome>) -> Result<()> {
        match outcome {
            Ok(Outcome::Created) => self.created += 1,
            Ok(Outcome::Updated) => self.updated += 1,
            Ok(Outcome::Unchanged) => self.unchanged += 1,
            Err(error @ Error::Unavailable(_)) => return Err(error),
            Err(error) => {
                self.failed += 1;
                if self.errors.len() < MAX_LISTED_ERRORS {
                    self.errors.push(row_error(row, error));
                }
            }
        }
        Ok(())
    }
}

fn row_error(row: u64, error: Error) -> RowError {
    let message = error.to_string();
    let (reason, fields) = match error {
        Error::InvalidArgument { reason, violations } => (reason.to_owned(), violations),
        Error::AlreadyExists { field, reason, .. } => (
            reason.to_owned(),
            vec![FieldViolation {
                field,
                description: "another record already has this value".into(),
            }],
        ),
        Error::FailedPrecondition { reason, .. } => (reason.to_owned(), Vec::new()),
        Error::StaleEtag { .. } => ("STALE_ETAG".into(), Vec::new()),
        Error::NotFound { .. } => ("NOT_FOUND".into(), Vec::new()),
        Error::RequestIdReused => ("REQUEST_ID_REUSED".into(), Vec::new()),
        Error::Unavailable(_) => ("UNAVAILABLE".into(), Vec::new()),
        Error::ShuttingDown => ("SHUTTING_DOWN".into(), Vec::new()),
        Error::Conflict(_) => ("CONCURRENT_WRITE".into(), Vec::new()),
        Error::Unauthenticated { reason, .. }
        | Error::PermissionDenied { reason, .. }
        | Error::ResourceExhausted { reason, .. } => (reason.to_owned(), Vec::new()),
        Error::Internal(detail) | Error::DataLoss(detail) => {
            tracing::error!(row, %detail, "import row failed: internal error");
            return RowError {
                row,
                reason: "INTERNAL".into(),
                message: "internal error".into(),
                fields: Vec::new(),
            };
        }
    };
    RowError {
        row,
        reason,
        message,
        fields,
    }
}

/// A customer as a row of an import: organisations by their business key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerRow {
    /// Primary email address.
    pub email: String,
    /// Login.
    pub login: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Salutation or title.
    pub title: String,
    /// Phone number.
    pub phone: String,
    /// Mobile number.
    pub mobile: String,
    /// The primary organisation's code.
    pub organisation_code: String,
    /// Further organisations' codes.
    pub secondary_organisation_codes: Vec<String>,
    /// Free label.
    pub customer_type: String,
    /// Key in the source system.
    pub external_id: String,
    /// Site-specific attributes.
    pub custom_fields: BTreeMap<String, String>,
    /// `None` means valid.
    pub validity: Option<Validity>,
}

/// The names of a customer import row, for errors about its organisations.
const ROW_FIELDS: OrganisationFields = OrganisationFields {
    primary: "organisation_code",
    secondary: "secondary_organisation_codes",
};

/// Runs a row again while it meets another write of the same record at the same moment (an
/// import of the same rows running beside this one, a client writing the record): a value the
/// other took just before this row's write, or a deadlock. Run again, the row finds the record
/// as the other left it and is counted as what it then is (mostly unchanged), not as failed.
async fn once_more_on_a_race<F, Fut>(mut row: F) -> Result<Outcome>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Outcome>>,
{
    let mut attempt = 1;
    loop {
        match row().await {
            // A value taken meanwhile is found by the second run's own checks; one taken by a
            // record of its own stays taken, and the row fails as it should.
            Err(Error::AlreadyExists { .. }) if attempt == 1 => {}
            Err(Error::Conflict(_)) if attempt < retry::ATTEMPTS => {
                retry::pause(attempt).await;
            }
            outcome => return outcome,
        }
        attempt += 1;
    }
}

/// Rows in flight at once. Each row is its own transaction; overlapping them hides the
/// database round trips of one row behind those of others.
const ROWS_IN_FLIGHT: usize = 16;

/// Runs rows concurrently while keeping the order of rows about the same record: a row
/// waits until no row in flight shares one of its keys (email, external id, business key).
struct Pipeline {
    running: JoinSet<(u64, Vec<String>, Result<Outcome>)>,
    keys_in_flight: Vec<Vec<String>>,
    summary: ImportSummary,
}

impl Pipeline {
    fn new() -> Self {
        Self {
            running: JoinSet::new(),
            keys_in_flight: Vec::new(),
            summary: ImportSummary::default(),
        }
    }

    /// Starts row number `self.summary.rows + 1` once it may run.
    async fn start(
        &mut self,
        keys: Vec<String>,
        row: impl Future<Output = Result<Outcome>> + Send + 'static,
    ) -> Result<()> {
        while self.running.len() >= ROWS_IN_FLIGHT
            || self
                .keys_in_flight
                .iter()
                .any(|other| other.iter().any(|key| keys.contains(key)))
        {
            self.finish_one().await?;
        }
        self.summary.rows += 1;
        let number = self.summary.rows;
        self.keys_in_flight.push(keys.clone());
        self.running.spawn(async move { (number, keys, row.await) });
        Ok(())
    }

    /// Counts a row whose outcome is already known (it could not be read).
    fn refuse(&mut self, error: Error) -> Result<()> {
        self.summary.rows += 1;
        self.summary.count(self.summary.rows, Err(error))
    }

    async fn finish_one(&mut self) -> Result<()> {
        let Some(joined) = self.running.join_next().await else {
            return Ok(());
        };
        let (number, keys, outcome) =
            joined.map_err(|e| Error::Internal(format!("an import row task failed: {e}")))?;
        if let Some(position) = self.keys_in_flight.iter().position(|k| *k == keys) {
            self.keys_in_flight.swap_remove(position);
        }
        self.summary.count(number, outcome)
    }

    async fn finish(mut self) -> Result<ImportSummary> {
        while !self.running.is_empty() {
            self.finish_one().await?;
        }
        self.summary.errors.sort_by_key(|error| error.row);
        Ok(self.summary)
    }
}

/// Organisations by case-folded code, looked up once per import.
type OrganisationCache = Arc<Mutex<HashMap<String, Option<Organisation>>>>;

/// A customer import in progress: feed it rows, then take the summary.
pub struct CustomerImport {
    customers: Customers,
    writer: MasterDataWriter,
    organisations: OrganisationCache,
    pipeline: Pipeline,
}

impl CustomerImport {
    /// An import by `writer`.
    pub fn new(customers: &Customers, writer: MasterDataWriter) -> Self {
        Self {
            customers: customers.clone(),
            writer,
            organisations: OrganisationCache::default(),
            pipeline: Pipeline::new(),
        }
    }

    /// Takes the next row; `Err` only when the import cannot go on.
    pub async fn row(&mut self, row: Result<CustomerRow>) -> Result<()> {
        let row = match row {
            Ok(row) => row,
            Err(error) => return self.pipeline.refuse(error),
        };
        let keys = vec![
            format!("email:{}", row.email.trim().to_lowercase()),
            format!("external:{}", row.external_id.trim()),
        ];
        let customers = self.customers.clone();
        let writer = self.writer.clone();
        let organisations = self.organisations.clone();
        self.pipeline
            .start(keys, async move {
                once_more_on_a_race(|| {
                    upsert_customer(&customers, &writer, &organisations, row.clone())
                })
                .await
            })
            .await
    }

    /// Waits for the rows still running; then what happened to every row.
    pub async fn finish(self) -> Result<ImportSummary> {
        self.pipeline.finish().await
    }
}

async fn upsert_customer(
    customers: &Customers,
    writer: &MasterDataWriter,
    organisations: &OrganisationCache,
    row: CustomerRow,
) -> Result<Outcome> {
    let mut violations = Violations::default();
    let organisation_id = match row.organisation_code.trim() {
        "" => None,
        key => {
            resolve(
                customers,
                writer,
                organisations,
                &mut violations,
                "organisation_code",
                key,
            )
            .await?
        }
    };
    let mut secondary_organisation_ids = Vec::new();
    for (index, key) in row.secondary_organisation_codes.iter().enumerate() {
        let field = format!("secondary_organisation_codes[{index}]");
        if let Some(id) = resolve(
            customers,
            writer,
            organisations,
            &mut violations,
            &field,
            key.trim(),
        )
        .await?
        {
            secondary_organisation_ids.push(id);
        }
    }
    violations.finish()?;
    let external_id = row.external_id.trim().to_owned();
    let input = CustomerInput {
        email: row.email,
        secondary_emails: Vec::new(),
        login: row.login,
        first_name: row.first_name,
        last_name: row.last_name,
        title: row.title,
        phone: row.phone,
        mobile: row.mobile,
        organisation_id,
        secondary_organisation_ids,
        customer_type: row.customer_type,
        custom_fields: row.custom_fields,
        external_id: external_id.clone(),
        validity: row.validity,
        directory_id: None,
        source: None,
    };
    let store = &customers.store;
    // By external id first; a row whose external id nobody has yet matches by email, so that
    // a record made before the sync (by hand, say) is taken over rather than duplicated.
    let by_external = if external_id.is_empty() {
        None
    } else {
        store.customer_by_external_id(&external_id).await?
    };
    let by_external_id = by_external.is_some();
    let existing = match by_external {
        Some(found) => Some(found),
        None => {
            store
                .customer_by_email(
                    &ServiceWork::RULE_CHECKS.master_data(),
                    &super::email::lookup_form(&input.email),
                )
                .await?
        }
    };
    // One the writer may not read is as good as missing: creating it meets the taken key.
    let existing = existing.filter(|found| writer.contacts().admits_customer_record(found));
    let Some(current) = existing else {
        return match customers.insert(writer, &input, None, ROW_FIELDS).await? {
            Inserted::New(_) => Ok(Outcome::Created),
            Inserted::Replay { .. } => Ok(Outcome::Unchanged),
        };
    };
    // Secondary addresses are not part of a row and stay; a row matched by email keeps the
    // address it was matched by (it may be a secondary one); a row that names no
    // organisations keeps the customer's (domain assignment may have given it one).
    let names_organisations =
        input.organisation_id.is_some() || !input.secondary_organisation_ids.is_empty();
    let fields: Vec<CustomerField> = CustomerField::ALL
        .into_iter()
        .filter(|field| *field != CustomerField::SecondaryEmails)
        // The helpdesk's own filing, which an import leaves alone.
        .filter(|field| *field != CustomerField::DirectoryId)
        .filter(|field| by_external_id || *field != CustomerField::Email)
        .filter(|field| {
            names_organisations
                || !matches!(
                    field,
                    CustomerField::OrganisationId | CustomerField::SecondaryOrganisationIds
                )
        })
        .collect();
    let before = current.version;
    let after = customers
        .change(
            writer,
            current,
            &fields,
            &input,
            Some(input.validity.unwrap_or(Validity::Valid)),
            ROW_FIELDS,
        )
        .await?;
    Ok(if after.version == before {
        Outcome::Unchanged
    } else {
        Outcome::Updated
    })
}

/// The id of the organisation with `code`, or a violation of `field`.
async fn resolve(
    customers: &Customers,
    writer: &MasterDataWriter,
    cache: &OrganisationCache,
    violations: &mut Violations,
    field: &str,
    code: &str,
) -> Result<Option<uuid::Uuid>> {
    let key = code.to_lowercase();
    let cached = cache.lock().ok().and_then(|cache| cache.get(&key).cloned());
    let found = match cached {
        Some(found) => found,
        None => {
            let found = customers
                .store
                .organisation_by_code(writer.contacts(), code)
                .await?;
            if let Ok(mut cache) = cache.lock() {
                cache.insert(key, found.clone());
            }
            found
        }
    };
    if found.is_none() {
        violations.add(field, format!("no organisation has the code {code:?}"));
    }
    Ok(found.map(|org| org.id))
}

/// An organisation import in progress: feed it rows, then take the summary.
pub struct OrganisationImport {
    organisations: Organisations,
    writer: MasterDataWriter,
    pipeline: Pipeline,
}

impl OrganisationImport {
    /// An import by `writer`.
    pub fn new(organisations: &Organisations, writer: MasterDataWriter) -> Self {
        Self {
            organisations: organisations.clone(),
            writer,
            pipeline: Pipeline::new(),
        }
    }

    /// Takes the next row; `Err` only when the import cannot go on.
    pub async fn row(&mut self, row: Result<OrganisationInput>) -> Result<()> {
        let input = match row {
            Ok(input) => input,
            Err(error) => return self.pipeline.refuse(error),
        };
        let mut keys = vec![format!("code:{}", input.code.to_lowercase())];
        keys.extend(
            input
                .email_domains
                .iter()
                .map(|domain| format!("domain:{}", domain.trim().to_lowercase())),
        );
        keys.push(format!("external:{}", input.external_id.trim()));
        let organisations = self.organisations.clone();
        let writer = self.writer.clone();
        self.pipeline
            .start(keys, async move {
                once_more_on_a_race(|| upsert_organisation(&organisations, &writer, input.clone()))
                    .await
            })
            .await
    }

    /// Waits for the rows still running; then what happened to every row.
    pub async fn finish(self) -> Result<ImportSummary> {
        self.pipeline.finish().await
    }
}

async fn upsert_organisation(
    organisations: &Organisations,
    writer: &MasterDataWriter,
    input: OrganisationInput,
) -> Result<Outcome> {
    // By external id first, else by code (also for a row whose external id nobody
    // has yet: an organisation made before the sync is taken over, not duplicated).
    let external_id = input.external_id.trim();
    let by_external = if external_id.is_empty() {
        None
    } else {
        organisations.find_by_external_id(external_id).await?
    };
    let existing = match by_external {
        Some(found) => Some(found),
        None => organisations.find_by_code(&input.code).await?,
    };
    // One the writer may not read is as good as missing: creating it meets the taken key.
    let existing = existing.filter(|found| writer.contacts().admits_organisation_record(found));
    let Some(current) = existing else {
        organisations.create(writer, input, None).await?;
        return Ok(Outcome::Created);
    };
    let before = current.version;
    let after = organisations.replace(writer, current, &input).await?;
    Ok(if after.version == before {
        Outcome::Unchanged
    } else {
        Outcome::Updated
    })
}
