//! Links of the customer detail view (OTRS's customer info links): URL templates, configured
//! by the operator, filled from an organisation's or a customer's fields — a map from the
//! address, the web site, a CRM or social profile.

use std::collections::BTreeMap;

use crate::model::{Customer, Organisation};

/// The placeholders an organisation fills.
const ORGANISATION_FIELDS: &[&str] = &["code", "name", "street", "zip", "city", "country", "url"];

/// The placeholders a customer fills, besides its primary organisation's.
const CUSTOMER_FIELDS: &[&str] = &[
    "email",
    "first_name",
    "last_name",
    "login",
    "phone",
    "mobile",
];

/// One template: `name=URL` with `{field}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkTemplate {
    /// The link's name (`map`, `web`, …).
    pub name: String,
    /// The URL with placeholders.
    pub template: String,
}

impl LinkTemplate {
    /// Reads `name=URL`: the name of letters, digits, `-` and `_`; the URL http(s) or exactly
    /// `{url}`; every placeholder a field of an organisation or a customer.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let Some((name, template)) = spec.split_once('=') else {
            return Err(format!("{spec:?} is not NAME=URL"));
        };
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(format!(
                "the link name {name:?} must be letters, digits, - or _"
            ));
        }
        if template != "{url}"
            && !template.starts_with("https://")
            && !template.starts_with("http://")
        {
            return Err(format!(
                "the link {name} must start with https:// or http://, or be {{url}}"
            ));
        }
        for placeholder in placeholders(template) {
            let known = ORGANISATION_FIELDS.contains(&placeholder)
                || CUSTOMER_FIELDS.contains(&placeholder);
            if !known {
                return Err(format!(
                    "the link {name} names {{{placeholder}}}, which is no field; use {}",
                    ORGANISATION_FIELDS
                        .iter()
                        .chain(CUSTOMER_FIELDS)
                        .map(|f| format!("{{{f}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            template: template.to_owned(),
        })
    }

    /// The templates a server has unless configured otherwise: a map of the address on
    /// OpenStreetMap, and the organisation's web site.
    pub fn defaults() -> Vec<Self> {
        [
            "map=https://www.openstreetmap.org/search?query={street} {zip} {city} {country}",
            "web={url}",
        ]
        .into_iter()
        .map(|spec| Self::parse(spec).expect("the default templates parse"))
        .collect()
    }
}

/// The `{…}` names in `template`.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// The fields of `organisation` and, for a customer's view, of `customer`.
pub fn fields(
    organisation: Option<&Organisation>,
    customer: Option<&Customer>,
) -> BTreeMap<&'static str, String> {
    let mut fields = BTreeMap::new();
    if let Some(org) = organisation {
        for (name, value) in [
            ("code", &org.code),
            ("name", &org.name),
            ("street", &org.street),
            ("zip", &org.zip),
            ("city", &org.city),
            ("country", &org.country),
            ("url", &org.url),
        ] {
            fields.insert(name, value.clone());
        }
    }
    if let Some(customer) = customer {
        for (name, value) in [
            ("email", customer.email.clone()),
            ("first_name", customer.first_name.clone()),
            ("last_name", customer.last_name.clone()),
            ("login", customer.login.clone().unwrap_or_default()),
            ("phone", customer.phone.clone()),
            ("mobile", customer.mobile.clone()),
        ] {
            fields.insert(name, value);
        }
    }
    fields
}

/// The links `templates` make from `fields`, by name: each value form-encoded (a template
/// that is one placeholder, such as `{url}`, takes the value as it is); a link all of whose
/// placeholders are empty is left out.
pub fn render(
    templates: &[LinkTemplate],
    fields: &BTreeMap<&'static str, String>,
) -> Vec<(String, String)> {
    let value = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    templates
        .iter()
        .filter(|t| placeholders(&t.template).any(|name| !value(name).trim().is_empty()))
        .map(|t| {
            let whole = t
                .template
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'));
            if let Some(name) = whole.filter(|name| !name.contains('{')) {
                return (t.name.clone(), value(name).to_owned());
            }
            let mut url = String::with_capacity(t.template.len());
            let mut rest = t.template.as_str();
            while let Some(start) = rest.find('{') {
                url.push_str(&rest[..start]);
                let after = &rest[start + 1..];
                match after.split_once('}') {
                    Some((name, tail)) => {
                        url.extend(url::form_urlencoded::byte_serialize(value(name).as_bytes()));
                        rest = tail;
                    }
                    None => {
                        url.push_str(&rest[start..]);
                        rest = "";
                    }
                }
            }
            url.push_str(rest);
            (t.name.clone(), url.replace(' ', "+"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked_and_filled_with_encoded_values() {
        assert!(LinkTemplate::parse("map").is_err());
        assert!(LinkTemplate::parse("bad name=https://x.example").is_err());
        assert!(LinkTemplate::parse("x=ftp://x.example/{city}").is_err());
        assert!(LinkTemplate::parse("x=https://x.example/{nope}").is_err());
        let templates = LinkTemplate::defaults();
        let fields = BTreeMap::from([
            ("street", "Königstraße 1".to_owned()),
            ("zip", "70173".to_owned()),
            ("city", "Stuttgart".to_owned()),
            ("country", "DE".to_owned()),
            ("url", String::new()),
        ]);
        let links = render(&templates, &fields);
        assert_eq!(
            links,
            [(
                "map".to_owned(),
                "https://www.openstreetmap.org/search?query=K%C3%B6nigstra%C3%9Fe+1+70173+Stuttgart+DE"
                    .to_owned()
            )],
            "no web link without a URL"
        );
    }
}
