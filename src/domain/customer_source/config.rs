//! The configuration of customer sources: a JSON file (`clientele serve --customer-sources
//! FILE`), read once at start-up. Paths in it are relative to the file; the bind password
//! comes from a file or an environment variable, never from the configuration itself.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{domain::customer_fields::CustomerField, ldap};

/// One LDAP directory customers are read from.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Its name, what `Customer.source` holds.
    pub name: String,
    /// Where it is and how to log in.
    pub endpoint: ldap::Endpoint,
    /// The base DN searched (subtree).
    pub base_dn: String,
    /// The filter of the entries that are customers.
    pub filter: String,
    /// The attribute that keys an entry for good (`entryUUID`; `objectGUID` on AD).
    pub key_attribute: String,
    /// Whether the key is binary, kept as hex digits (by default for `objectGUID`).
    pub key_binary: bool,
    /// Entries per page of a search.
    pub page_size: i32,
    /// How often it is synced.
    pub sync_interval: Duration,
    /// How often a sync reads every entry rather than the changed ones.
    pub full_sync_interval: Duration,
    /// Which attributes become which fields.
    pub mapping: Mapping,
}

/// Which attributes become which customer fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The primary email address (required).
    pub email: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Login.
    pub login: Option<String>,
    /// Salutation or title.
    pub title: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Mobile.
    pub mobile: Option<String>,
    /// The primary organisation, by its code.
    pub organisation: Option<OrganisationAttribute>,
    /// Custom fields by name.
    pub custom_fields: BTreeMap<String, String>,
}

/// Where an entry names its organisation (whose code it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganisationAttribute {
    /// An attribute of the entry, such as `o`.
    Attribute(String),
    /// A component of the entry's DN, such as `ou` of `uid=anna,ou=acme,dc=example,dc=com`
    /// (written `dn:ou`).
    DnComponent(String),
}

impl SourceConfig {
    /// The key of `entry` in this source.
    pub fn key_of(&self, entry: &ldap::Entry) -> Option<String> {
        entry.key(&self.key_attribute, self.key_binary)
    }
}

impl Mapping {
    /// The attributes a sync asks for.
    pub fn attributes(&self) -> Vec<String> {
        let mut names = vec![self.email.clone()];
        names.extend(
            [
                &self.first_name,
                &self.last_name,
                &self.login,
                &self.title,
                &self.phone,
                &self.mobile,
            ]
            .into_iter()
            .flatten()
            .cloned(),
        );
        if let Some(OrganisationAttribute::Attribute(name)) = &self.organisation {
            names.push(name.clone());
        }
        names.extend(self.custom_fields.values().cloned());
        names
    }

    /// The customer fields the directory owns: those mapped (of the custom fields, only the
    /// mapped names, see [`Mapping::custom_fields`]).
    pub fn owned_fields(&self) -> Vec<CustomerField> {
        let mut fields = vec![CustomerField::Email];
        for (mapped, field) in [
            (&self.first_name, CustomerField::FirstName),
            (&self.last_name, CustomerField::LastName),
            (&self.login, CustomerField::Login),
            (&self.title, CustomerField::Title),
            (&self.phone, CustomerField::Phone),
            (&self.mobile, CustomerField::Mobile),
        ] {
            if mapped.is_some() {
                fields.push(field);
            }
        }
        if self.organisation.is_some() {
            fields.push(CustomerField::OrganisationId);
        }
        if !self.custom_fields.is_empty() {
            fields.push(CustomerField::CustomFields);
        }
        fields
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    sources: Vec<RawSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    url: String,
    #[serde(default)]
    starttls: bool,
    #[serde(default)]
    allow_plaintext: bool,
    ca_file: Option<PathBuf>,
    bind_dn: Option<String>,
    bind_password_file: Option<PathBuf>,
    bind_password_env: Option<String>,
    base_dn: String,
    #[serde(default = "default_filter")]
    filter: String,
    #[serde(default = "default_key")]
    key_attribute: String,
    key_binary: Option<bool>,
    #[serde(default = "default_page_size")]
    page_size: i32,
    #[serde(default = "default_interval")]
    sync_interval_seconds: u64,
    #[serde(default = "default_full_interval")]
    full_sync_interval_seconds: u64,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    mapping: RawMapping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    login: Option<String>,
    title: Option<String>,
    phone: Option<String>,
    mobile: Option<String>,
    organisation: Option<String>,
    #[serde(default)]
    custom_fields: BTreeMap<String, String>,
}

fn default_filter() -> String {
    "(objectClass=inetOrgPerson)".into()
}
fn default_key() -> String {
    "entryUUID".into()
}
fn default_page_size() -> i32 {
    500
}
fn default_interval() -> u64 {
    900
}
fn default_full_interval() -> u64 {
    86_400
}
fn default_timeout() -> u64 {
    30
}

/// Reads the sources from the JSON file at `path`; a message naming what is wrong if it is
/// not a usable configuration.
pub fn load(path: &Path) -> Result<Vec<SourceConfig>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base, |name| std::env::var(name).ok())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The sources of configuration `text`; relative paths lie under `base`, `env` reads the
/// environment.
pub fn parse(
    text: &str,
    base: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<SourceConfig>, String> {
    let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut sources: Vec<SourceConfig> = Vec::new();
    for raw in file.sources {
        let name = raw.name.clone();
        let source = source(raw, base, &env).map_err(|e| format!("source {name:?}: {e}"))?;
        if sources.iter().any(|other| other.name == source.name) {
            return Err(format!("two sources are named {name:?}"));
        }
        sources.push(source);
    }
    Ok(sources)
}

fn source(
    raw: RawSource,
    base: &Path,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SourceConfig, String> {
    let valid_name = !raw.name.is_empty()
        && raw.name.len() <= 50
        && raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err("`name` must be 1 to 50 letters, digits, `-` or `_`".into());
    }
    let url = url::Url::parse(&raw.url).map_err(|e| format!("`url` {:?}: {e}", raw.url))?;
    match url.scheme() {
        "ldaps" if raw.starttls => {
            return Err("`starttls` is for `ldap://` URLs; `ldaps://` is TLS already".into());
        }
        "ldaps" => {}
        "ldap" if raw.starttls || raw.allow_plaintext => {}
        "ldap" => {
            return Err(
                "an `ldap://` URL needs `starttls: true` (or `allow_plaintext: true`, which \
                 sends the bind password in the clear)"
                    .into(),
            );
        }
        other => return Err(format!("`url` must be ldap:// or ldaps://, not {other}://")),
    }
    if url.host_str().is_none_or(str::is_empty) || !url.username().is_empty() {
        return Err("`url` must name a host, and no credentials".into());
    }
    let roots = match &raw.ca_file {
        Some(file) => ca_roots(&base.join(file))?,
        None => ldap::public_roots(),
    };
    let password = match (&raw.bind_password_file, &raw.bind_password_env) {
        (Some(_), Some(_)) => {
            return Err("give `bind_password_file` or `bind_password_env`, not both".into());
        }
        (Some(file), None) => {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("`bind_password_file` {}: {e}", path.display()))?;
            Some(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, Some(variable)) => {
            Some(env(variable).ok_or_else(|| format!("the environment has no {variable}"))?)
        }
        (None, None) => None,
    };
    let bind = match (raw.bind_dn, password) {
        (Some(dn), Some(password)) => Some((dn, password)),
        (None, None) => None,
        _ => return Err("`bind_dn` and a bind password go together".into()),
    };
    if raw.base_dn.trim().is_empty() {
        return Err("`base_dn` is required".into());
    }
    if !(raw.filter.starts_with('(') && raw.filter.ends_with(')')) {
        return Err("`filter` must be an LDAP filter in parentheses".into());
    }
    if !(1..=10_000).contains(&raw.page_size) {
        return Err("`page_size` must be 1 to 10000".into());
    }
    let year = 366 * 86_400;
    let intervals = [raw.sync_interval_seconds, raw.full_sync_interval_seconds];
    if intervals
        .iter()
        .any(|seconds| !(1..=year).contains(seconds))
    {
        return Err("the sync intervals must be a second to a year".into());
    }
    if !(1..=3600).contains(&raw.timeout_seconds) {
        return Err("`timeout_seconds` must be 1 to 3600".into());
    }
    attribute("key_attribute", &raw.key_attribute)?;
    let mapping = mapping(raw.mapping)?;
    Ok(SourceConfig {
        name: raw.name,
        endpoint: ldap::Endpoint {
            url: raw.url,
            starttls: raw.starttls,
            tls: ldap::tls_config(roots)?,
            bind,
            timeout: Duration::from_secs(raw.timeout_seconds),
        },
        base_dn: raw.base_dn,
        filter: raw.filter,
        key_binary: raw
            .key_binary
            .unwrap_or(raw.key_attribute.eq_ignore_ascii_case("objectGUID")),
        key_attribute: raw.key_attribute,
        page_size: raw.page_size,
        sync_interval: Duration::from_secs(raw.sync_interval_seconds),
        full_sync_interval: Duration::from_secs(raw.full_sync_interval_seconds),
        mapping,
    })
}

fn mapping(raw: RawMapping) -> Result<Mapping, String> {
    attribute("mapping.email", &raw.email)?;
    for (field, value) in [
        ("first_name", &raw.first_name),
        ("last_name", &raw.last_name),
        ("login", &raw.login),
        ("title", &raw.title),
        ("phone", &raw.phone),
        ("mobile", &raw.mobile),
    ] {
        if let Some(value) = value {
            attribute(&format!("mapping.{field}"), value)?;
        }
    }
    for (name, value) in &raw.custom_fields {
        attribute(&format!("mapping.custom_fields.{name}"), value)?;
    }
    let organisation = match raw.organisation {
        None => None,
        Some(value) => Some(match value.strip_prefix("dn:") {
            Some(component) => {
                attribute("mapping.organisation", component)?;
                OrganisationAttribute::DnComponent(component.to_owned())
            }
            None => {
                attribute("mapping.organisation", &value)?;
                OrganisationAttribute::Attribute(value)
            }
        }),
    };
    Ok(Mapping {
        email: raw.email,
        first_name: raw.first_name,
        last_name: raw.last_name,
        login: raw.login,
        title: raw.title,
        phone: raw.phone,
        mobile: raw.mobile,
        organisation,
        custom_fields: raw.custom_fields,
    })
}

/// An attribute description: a name (`givenName`) or an OID (`2.5.4.42`).
fn attribute(field: &str, name: &str) -> Result<(), String> {
    let descriptor = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_digit() || c == '.');
    if name.len() > 100 || !(descriptor || oid) {
        return Err(format!("`{field}` {name:?} is not an attribute name"));
    }
    Ok(())
}

/// The certificate authorities in the PEM file at `path`.
fn ca_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("`ca_file` {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`ca_file` {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(format!("`ca_file` {} holds no certificate", path.display()));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(source: &str) -> Result<Vec<SourceConfig>, String> {
        parse(
            &format!(r#"{{"sources": [{source}]}}"#),
            Path::new("."),
            |name| (name == "LDAP_PW").then(|| "secret".to_owned()),
        )
    }

    #[test]
    fn a_source_is_read_with_its_defaults() {
        let sources = parsed(
            r#"{"name": "corp", "url": "ldaps://ldap.example.com", "base_dn": "dc=example",
                "bind_dn": "cn=reader", "bind_password_env": "LDAP_PW",
                "mapping": {"email": "mail", "last_name": "sn", "organisation": "dn:ou",
                            "custom_fields": {"department": "departmentNumber"}}}"#,
        )
        .unwrap();
        let source = &sources[0];
        assert_eq!(source.filter, "(objectClass=inetOrgPerson)");
        assert_eq!(source.key_attribute, "entryUUID");
        assert_eq!(source.sync_interval, Duration::from_secs(900));
        assert_eq!(
            source.endpoint.bind,
            Some(("cn=reader".to_owned(), "secret".to_owned()))
        );
        assert_eq!(
            source.mapping.organisation,
            Some(OrganisationAttribute::DnComponent("ou".into()))
        );
        assert_eq!(
            source.mapping.owned_fields(),
            vec![
                CustomerField::Email,
                CustomerField::LastName,
                CustomerField::OrganisationId,
                CustomerField::CustomFields
            ]
        );
        assert_eq!(
            source.mapping.attributes(),
            vec!["mail", "sn", "departmentNumber"]
        );
    }

    #[test]
    fn unusable_sources_are_refused_with_the_reason() {
        let base = r#""name": "corp", "base_dn": "dc=example", "mapping": {"email": "mail"}"#;
        for (source, expected) in [
            (
                format!(r#"{{{base}, "url": "ldap://ldap.example.com"}}"#),
                "needs `starttls: true`",
            ),
            (
                format!(r#"{{{base}, "url": "http://ldap.example.com"}}"#),
                "must be ldap:// or ldaps://",
            ),
            (
                format!(r#"{{{base}, "url": "ldaps://u:p@ldap.example.com"}}"#),
                "no credentials",
            ),
            (
                format!(r#"{{{base}, "url": "ldaps://h", "bind_dn": "cn=x"}}"#),
                "go together",
            ),
            (
                format!(r#"{{{base}, "url": "ldaps://h", "page_size": 0}}"#),
                "page_size",
            ),
            (
                format!(r#"{{{base}, "url": "ldaps://h", "key_attribute": "a b"}}"#),
                "not an attribute name",
            ),
            (
                format!(r#"{{{base}, "url": "ldaps://h", "colour": "red"}}"#),
                "unknown field",
            ),
            (
                format!(r#"{{{base}, "url": "ldaps://h"}}, {{{base}, "url": "ldaps://h"}}"#),
                "two sources",
            ),
        ] {
            let error = parsed(&source).unwrap_err();
            assert!(error.contains(expected), "{source}: {error}");
        }
    }
}
