//! Reading an LDAP directory (OpenLDAP, Active Directory, …): connect over LDAPS or with
//! StartTLS, bind, and page through a search with the paged-results control, one entry at a
//! time, so that a directory of any size is read in bounded memory. Only reads: Clientele
//! never writes to a directory.

use std::{
    collections::HashMap,
    fmt::Write as _,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::Duration,
};

use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchStream,
    adapters::{Adapter, EntriesOnly, PagedResults},
};

/// Why the directory could not be read; the text names the step and the server's answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LdapError(String);

impl LdapError {
    fn at(step: &str, error: impl std::fmt::Display) -> Self {
        Self(format!("{step}: {error}"))
    }
}

/// Where a directory is and how to log in to it.
#[derive(Clone)]
pub struct Endpoint {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub starttls: bool,
    /// The certificate authorities trusted for the directory's certificate.
    pub tls: Arc<rustls::ClientConfig>,
    /// The DN and password of a simple bind; anonymous without.
    pub bind: Option<(String, String)>,
    /// The longest wait for the connection and for each answer.
    pub timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("bind_dn", &self.bind.as_ref().map(|(dn, _)| dn))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// TLS settings trusting `roots` (with ring, the provider already in the tree).
pub fn tls_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| format!("TLS settings: {e}"))
}

/// The Web PKI's certificate authorities.
pub fn public_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// A bound connection.
pub struct Connection {
    ldap: Ldap,
    timeout: Duration,
}

impl Endpoint {
    /// Connects and binds.
    pub async fn connect(&self) -> Result<Connection, LdapError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls)
            .set_config(self.tls.clone());
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| LdapError::at(&format!("connecting to {}", self.url), e))?;
        ldap3::drive!(conn);
        if let Some((dn, password)) = &self.bind {
            ldap.with_timeout(self.timeout)
                .simple_bind(dn, password)
                .await
                .and_then(|result| result.success())
                .map_err(|e| LdapError::at(&format!("binding as {dn}"), e))?;
        }
        Ok(Connection {
            ldap,
            timeout: self.timeout,
        })
    }
}

/// One entry of a search, its attribute names lower-cased.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The entry's DN.
    pub dn: String,
    attrs: HashMap<String, Vec<String>>,
    binary: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// An entry with these values.
    #[cfg(test)]
    fn new(dn: &str, attrs: &[(&str, &str)]) -> Self {
        let mut entry = Self {
            dn: dn.to_owned(),
            ..Self::default()
        };
        for (name, value) in attrs {
            entry
                .attrs
                .entry(name.to_lowercase())
                .or_default()
                .push((*value).to_owned());
        }
        entry
    }

    /// The first text value of attribute `name` (any case), trimmed; `None` when it has
    /// none or only binary ones.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.attrs
            .get(&name.to_lowercase())
            .and_then(|values| values.first())
            .map(|value| value.trim())
    }

    /// The first value of `name` as a key: the text, or with `binary` (Active Directory's
    /// `objectGUID`) the hex digits of its bytes, whether or not they happen to read as text.
    pub fn key(&self, name: &str, binary: bool) -> Option<String> {
        let name = name.to_lowercase();
        let bytes: &[u8] = match self.attrs.get(&name).and_then(|values| values.first()) {
            Some(text) if !binary => {
                let text = text.trim();
                return (!text.is_empty()).then(|| text.to_owned());
            }
            Some(text) => text.as_bytes(),
            None => self.binary.get(&name)?.first()?,
        };
        let mut hex = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            let _ = write!(hex, "{byte:02x}");
        }
        (!hex.is_empty()).then_some(hex)
    }

    /// The value of the first component `attribute=value` of the DN (`ou`, `o`, `dc`).
    pub fn dn_component(&self, attribute: &str) -> Option<String> {
        split_dn(&self.dn).into_iter().find_map(|component| {
            let (name, value) = component.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case(attribute)
                .then(|| unescape_dn_value(value.trim()))
        })
    }

    fn from_search(entry: SearchEntry) -> Self {
        fn lower<V>(map: HashMap<String, V>) -> HashMap<String, V> {
            map.into_iter()
                .map(|(name, values)| (name.to_lowercase(), values))
                .collect()
        }
        Self {
            dn: entry.dn,
            attrs: lower(entry.attrs),
            binary: lower(entry.bin_attrs),
        }
    }
}

/// The components of a DN, split at the commas that are not escaped.
fn split_dn(dn: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (index, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                parts.push(&dn[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&dn[start..]);
    parts
}

/// A DN attribute value with its backslash escapes (`\,`, `\2C`) resolved.
fn unescape_dn_value(value: &str) -> String {
    let mut bytes = Vec::with_capacity(value.len());
    let raw = value.as_bytes();
    let mut index = 0;
    while index < raw.len() {
        if raw[index] == b'\\' && index + 1 < raw.len() {
            let hex = raw
                .get(index + 1..index + 3)
                .filter(|pair| pair.iter().all(u8::is_ascii_hexdigit))
                .and_then(|pair| {
                    std::str::from_utf8(pair)
                        .ok()
                        .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                });
            match hex {
                Some(byte) => {
                    bytes.push(byte);
                    index += 3;
                }
                None => {
                    bytes.push(raw[index + 1]);
                    index += 2;
                }
            }
        } else {
            bytes.push(raw[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A search in progress, read entry by entry; the server sends a page at a time.
pub struct Search {
    stream: SearchStream<'static, String, Vec<String>>,
}

impl Connection {
    /// Starts a subtree search of `base` for `filter`, reading `attributes`, `page_size`
    /// entries a page.
    pub async fn search(
        &mut self,
        base: &str,
        filter: &str,
        attributes: Vec<String>,
        page_size: i32,
    ) -> Result<Search, LdapError> {
        let adapters: Vec<Box<dyn Adapter<'static, String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(page_size)),
        ];
        let stream = self
            .ldap
            .with_timeout(self.timeout)
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attributes)
            .await
            .map_err(|e| LdapError::at(&format!("searching {base} for {filter}"), e))?;
        Ok(Search { stream })
    }

    /// Says goodbye; a failure to do so changes nothing.
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

impl Search {
    /// The next entry; `None` once the search has ended well.
    pub async fn next(&mut self) -> Result<Option<Entry>, LdapError> {
        match self.stream.next().await {
            Ok(Some(raw)) => catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(raw)))
                .map(|entry| Some(Entry::from_search(entry)))
                .map_err(|_| {
                    LdapError("the directory sent an entry that is not well-formed".into())
                }),
            Ok(None) => {
                let result = self.stream.finish().await;
                result
                    .success()
                    .map(|_| None)
                    .map_err(|e| LdapError::at("the search ended", e))
            }
            Err(error) => Err(LdapError::at("reading the search's results", error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dn_component_is_found_and_unescaped() {
        let entry = Entry::new(
            r"uid=a,ou=Sales\2C EMEA,o=Acme\, Inc.,dc=example,dc=com",
            &[],
        );
        assert_eq!(entry.dn_component("ou").as_deref(), Some("Sales, EMEA"));
        assert_eq!(entry.dn_component("O").as_deref(), Some("Acme, Inc."));
        assert_eq!(entry.dn_component("dc").as_deref(), Some("example"));
        assert_eq!(entry.dn_component("l"), None);
        let entry = Entry::new(r"uid=a,ou=R\+1 Team", &[]);
        assert_eq!(entry.dn_component("ou").as_deref(), Some("R+1 Team"));
    }

    #[test]
    fn attributes_are_read_in_any_case_and_keys_from_binary_values() {
        let mut entry = Entry::new("uid=a", &[("givenName", " Anna ")]);
        assert_eq!(entry.first("givenname"), Some("Anna"));
        entry
            .binary
            .insert("objectguid".into(), vec![vec![0x01, 0xab, 0xff]]);
        assert_eq!(entry.key("objectGUID", true).as_deref(), Some("01abff"));
        assert_eq!(entry.key("cn", false), None);
        // A binary key whose bytes read as text is still hex.
        let entry = Entry::new("uid=a", &[("objectGUID", "AB"), ("uid", " a ")]);
        assert_eq!(entry.key("objectguid", true).as_deref(), Some("4142"));
        assert_eq!(entry.key("uid", false).as_deref(), Some("a"));
    }
}
