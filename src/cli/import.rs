//! `clientele import customers|organisations FILE.csv`: streams the rows of a CSV file to a
//! running server's import RPC with a progress bar, then prints the summary.
//!
//! The first line names the columns (any order, any case). Lists (`secondary_organisation_codes`,
//! `email_domains`) are separated by `;`. A column `custom.KEY` fills custom field KEY.

use std::{collections::HashMap, path::Path, pin::Pin, time::Duration};

use clientele::proto::v1 as pb;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::{Stream, StreamExt};

/// Which records a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Customers: email, login, first_name, last_name, title, phone, mobile, organisation_code,
    /// secondary_organisation_codes, type, external_id, validity, custom.KEY.
    Customers,
    /// Organisations: code, name, street, zip, city, country, url, comment,
    /// email_domains, domain_assignment, external_id, validity, custom.KEY.
    Organisations,
}

const CUSTOMER_COLUMNS: &[&str] = &[
    "email",
    "login",
    "first_name",
    "last_name",
    "title",
    "phone",
    "mobile",
    "organisation_code",
    "secondary_organisation_codes",
    "type",
    "external_id",
    "validity",
];

const ORGANISATION_COLUMNS: &[&str] = &[
    "code",
    "name",
    "street",
    "zip",
    "city",
    "country",
    "url",
    "comment",
    "email_domains",
    "domain_assignment",
    "external_id",
    "validity",
];

/// A row read from the file: its line, and the message to send or why it cannot be sent.
struct Row<T> {
    line: u64,
    message: Result<T, String>,
}

/// A CSV record by column name.
struct Record<'a> {
    columns: &'a [String],
    values: &'a csv::StringRecord,
}

impl Record<'_> {
    fn get(&self, column: &str) -> String {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|index| self.values.get(index))
            .unwrap_or_default()
            .to_owned()
    }

    fn list(&self, column: &str) -> Vec<String> {
        self.get(column)
            .split(';')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn custom_fields(&self) -> HashMap<String, String> {
        self.columns
            .iter()
            .zip(self.values.iter())
            .filter_map(|(column, value)| {
                let key = column.strip_prefix("custom.")?;
                (!value.is_empty()).then(|| (key.to_owned(), value.to_owned()))
            })
            .collect()
    }

    fn validity(&self) -> Result<i32, String> {
        let value = self.get("validity").trim().to_lowercase();
        let validity = match value.as_str() {
            "" | "valid" => pb::Validity::Valid,
            "invalid" => pb::Validity::Invalid,
            "invalid_temporarily" => pb::Validity::InvalidTemporarily,
            other => {
                return Err(format!(
                    "validity: {other:?} is not valid, invalid or invalid_temporarily"
                ));
            }
        };
        Ok(validity.into())
    }

    fn flag(&self, column: &str) -> Result<bool, String> {
        match self.get(column).trim().to_lowercase().as_str() {
            "" | "false" | "no" | "0" => Ok(false),
            "true" | "yes" | "1" => Ok(true),
            other => Err(format!("{column}: {other:?} is not true or false")),
        }
    }
}

fn customer(record: &Record<'_>) -> Result<pb::ImportCustomersRequest, String> {
    Ok(pb::ImportCustomersRequest {
        row: Some(pb::CustomerImportRow {
            validity: record.validity()?,
            email: record.get("email"),
            login: record.get("login"),
            first_name: record.get("first_name"),
            last_name: record.get("last_name"),
            title: record.get("title"),
            phone: record.get("phone"),
            mobile: record.get("mobile"),
            organisation_code: record.get("organisation_code"),
            secondary_organisation_codes: record.list("secondary_organisation_codes"),
            r#type: record.get("type"),
            external_id: record.get("external_id"),
            custom_fields: record.custom_fields(),
        }),
    })
}

fn organisation(record: &Record<'_>) -> Result<pb::ImportOrganisationsRequest, String> {
    Ok(pb::ImportOrganisationsRequest {
        organisation: Some(pb::Organisation {
            validity: record.validity()?,
            domain_assignment: record.flag("domain_assignment")?,
            code: record.get("code"),
            name: record.get("name"),
            street: record.get("street"),
            zip: record.get("zip"),
            city: record.get("city"),
            country: record.get("country"),
            url: record.get("url"),
            comment: record.get("comment"),
            email_domains: record.list("email_domains"),
            external_id: record.get("external_id"),
            custom_fields: record.custom_fields(),
            ..Default::default()
        }),
    })
}

/// Reads `path` into rows of `T`, checking the header against `known` columns.
fn read<T>(
    path: &Path,
    known: &[&str],
    convert: impl Fn(&Record<'_>) -> Result<T, String>,
) -> Result<Vec<Row<T>>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| format!("cannot read the header line: {e}"))?
        .iter()
        .map(str::to_lowercase)
        .collect();
    let unknown: Vec<&String> = columns
        .iter()
        .filter(|c| !known.contains(&c.as_str()) && !c.starts_with("custom."))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown columns {unknown:?}; the columns are {} and custom.KEY",
            known.join(", ")
        ));
    }
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        // The header is line 1; a record's own position is more exact when the csv crate
        // knows it (quoted values may span lines).
        let fallback = index as u64 + 2;
        let row = match record {
            Ok(values) => Row {
                line: values.position().map_or(fallback, |p| p.line()),
                message: convert(&Record {
                    columns: &columns,
                    values: &values,
                }),
            },
            Err(error) => Row {
                line: error.position().map_or(fallback, |p| p.line()),
                message: Err(error.to_string()),
            },
        };
        rows.push(row);
    }
    Ok(rows)
}

/// Runs the import; the exit code is 0 when every row was imported, 1 when some failed, 2
/// when the import could not run.
pub async fn run(kind: Kind, file: &Path, server: &str, token: &str) -> u8 {
    match import(kind, file, server, token).await {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(message) => {
            eprintln!("import failed: {message}");
            2
        }
    }
}

async fn import(kind: Kind, file: &Path, server: &str, token: &str) -> Result<bool, String> {
    let bearer: tonic::metadata::MetadataValue<tonic::metadata::Ascii> = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the token contains characters a header cannot carry".to_owned())?;
    let authorise = move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
        Ok(request)
    };
    let channel = tonic::transport::Endpoint::from_shared(server.to_owned())
        .map_err(|e| format!("bad server address {server}: {e}"))?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("cannot reach {server}: {e}"))?;
    let (summary, local_errors) = match kind {
        Kind::Customers => {
            let rows = read(file, CUSTOMER_COLUMNS, customer)?;
            send(rows, |stream| {
                let channel = channel.clone();
                async move {
                    pb::customer_service_client::CustomerServiceClient::with_interceptor(
                        channel, authorise,
                    )
                    .import_customers(stream)
                    .await
                    .map(|r| r.into_inner().summary)
                }
            })
            .await?
        }
        Kind::Organisations => {
            let rows = read(file, ORGANISATION_COLUMNS, organisation)?;
            send(rows, |stream| {
                let channel = channel.clone();
                async move {
                    pb::organisation_service_client::OrganisationServiceClient::with_interceptor(
                        channel, authorise,
                    )
                    .import_organisations(stream)
                    .await
                    .map(|r| r.into_inner().summary)
                }
            })
            .await?
        }
    };
    let summary = summary.unwrap_or_default();
    let failed = summary.failed + local_errors.len() as i64;
    println!(
        "{}: {} rows, {} created, {} updated, {} unchanged, {} failed",
        file.display(),
        summary.rows + local_errors.len() as i64,
        summary.created,
        summary.updated,
        summary.unchanged,
        failed
    );
    let mut errors: Vec<(u64, String)> = local_errors;
    errors.extend(summary.errors.iter().map(|error| {
        let fields: Vec<String> = error
            .fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.description))
            .collect();
        let detail = if fields.is_empty() {
            error.message.clone()
        } else {
            fields.join("; ")
        };
        (
            error.row_number as u64,
            format!("{} {detail}", error.reason),
        )
    }));
    errors.sort_by_key(|(line, _)| *line);
    for (line, message) in &errors {
        println!("line {line}: {message}");
    }
    Ok(failed == 0)
}

/// The rows of an import as the RPC streams them.
type Rows<T> = Pin<Box<dyn Stream<Item = T> + Send + 'static>>;

/// Streams the sendable rows through `call` behind a progress bar; returns the server's
/// summary (its row numbers turned into file lines) and the rows that could not be sent.
async fn send<T, F, Fut>(
    rows: Vec<Row<T>>,
    call: F,
) -> Result<(Option<pb::ImportSummary>, Vec<(u64, String)>), String>
where
    T: Send + 'static,
    F: FnOnce(Rows<T>) -> Fut,
    Fut: Future<Output = Result<Option<pb::ImportSummary>, tonic::Status>>,
{
    let mut lines = Vec::new();
    let mut messages = Vec::new();
    let mut local_errors = Vec::new();
    for row in rows {
        match row.message {
            Ok(message) => {
                lines.push(row.line);
                messages.push(message);
            }
            Err(problem) => local_errors.push((row.line, format!("UNREADABLE {problem}"))),
        }
    }
    let bar = ProgressBar::new(messages.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows sent ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = bar.clone();
    let stream: Rows<T> = Box::pin(tokio_stream::iter(messages).map(move |message| {
        progress.inc(1);
        message
    }));
    let summary = call(stream).await;
    bar.finish_and_clear();
    let mut summary =
        summary.map_err(|status| format!("the server refused the import: {status}"))?;
    if let Some(summary) = summary.as_mut() {
        for error in &mut summary.errors {
            let index = usize::try_from(error.row_number - 1).unwrap_or(usize::MAX);
            error.row_number = lines.get(index).copied().map_or(0, |line| line as i64);
        }
    }
    Ok((summary, local_errors))
}
