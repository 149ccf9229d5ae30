//! How customers and organisations are found by a fragment of text: the search document each
//! record keeps (every field a fragment may come from, folded), and the fragment a client
//! sends in the same form.

use super::{Customer, Organisation};

/// The fewest characters a fragment needs for the substring index (trigrams); shorter ones
/// match the start of a sort key instead.
pub const INDEXED_FRAGMENT: usize = 3;

/// Text as it is searched: lower case, without diacritics ("Müller" → "muller"; "ß" stays).
pub fn fold_for_search(text: &str) -> String {
    use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The digits of a phone number as they are compared: without spaces, dashes, brackets,
/// dots or slashes, and without a leading `+` or `00` ("+49 (30) 1234-5" → "493012345").
pub fn phone_digits(text: &str) -> String {
    let text = text.trim_start();
    let text = text
        .strip_prefix('+')
        .or_else(|| text.strip_prefix("00"))
        .unwrap_or(text);
    text.chars().filter(char::is_ascii_digit).collect()
}

/// Whether a fragment is (a piece of) a phone number: digits, possibly with the separators
/// phone numbers are written with.
fn is_phone(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()./".contains(c))
}

/// A document of `fields`: each folded, each on a line of its own, with a line break before
/// the first and after the last, so that `\n{fragment}` marks the start of a field and
/// `\n{fragment}\n` a whole one.
fn document<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut document = String::from("\n");
    for field in fields {
        let field = fold_for_search(field.trim());
        if !field.is_empty() {
            document.push_str(&field.replace('\n', " "));
            document.push('\n');
        }
    }
    document
}

/// The search document of a customer: its names (each, and both in either order), email,
/// login, and the digits of its phone and mobile numbers.
pub fn customer_document(customer: &Customer) -> String {
    customer_fields_document(
        &customer.first_name,
        &customer.last_name,
        &customer.email,
        customer.login.as_deref().unwrap_or_default(),
        &customer.phone,
        &customer.mobile,
    )
}

/// [`customer_document`] of the fields as stored.
pub fn customer_fields_document(
    first_name: &str,
    last_name: &str,
    email: &str,
    login: &str,
    phone: &str,
    mobile: &str,
) -> String {
    let (first_last, last_first) = (
        format!("{first_name} {last_name}"),
        format!("{last_name} {first_name}"),
    );
    let (phone, mobile) = (phone_digits(phone), phone_digits(mobile));
    document([
        first_name,
        last_name,
        first_last.as_str(),
        last_first.as_str(),
        email,
        login,
        phone.as_str(),
        mobile.as_str(),
    ])
}

/// The search document of an organisation: its code, name, city and email domains.
pub fn organisation_document(organisation: &Organisation) -> String {
    organisation_fields_document(
        &organisation.code,
        &organisation.name,
        &organisation.city,
        &organisation.email_domains,
    )
}

/// [`organisation_document`] of the fields as stored.
pub fn organisation_fields_document(
    code: &str,
    name: &str,
    city: &str,
    domains: &[String],
) -> String {
    document(
        [code, name, city]
            .into_iter()
            .chain(domains.iter().map(String::as_str)),
    )
}

/// The separator of a relevance rank and a name in the key of a cursor in relevance order.
pub const RANKED: char = '\u{2}';

/// The cursor key of a record of relevance `rank` and name key `name_key`.
pub fn ranked_key(rank: u8, name_key: &str) -> String {
    format!("{rank}{RANKED}{name_key}")
}

/// A fragment to search for, as the documents hold it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Fragment {
    /// [`INDEXED_FRAGMENT`] characters or more: found anywhere in a document.
    Anywhere(String),
    /// Fewer: found at the start of a sort key (a customer's last name or email, an
    /// organisation's name or code), case-folded.
    Start(String),
}

impl Fragment {
    /// The fragment `text` stands for (a phone number by its digits), or `None` for one that
    /// holds nothing to search for.
    pub fn of(text: &str) -> Option<Self> {
        let text = text.trim();
        let folded = if is_phone(text) {
            phone_digits(text)
        } else {
            fold_for_search(text)
        };
        match folded.chars().count() {
            0 => None,
            n if n >= INDEXED_FRAGMENT => Some(Self::Anywhere(folded)),
            _ => Some(Self::Start(super::fold_case(text))),
        }
    }

    /// How well `document` matches a fragment found anywhere: 0 when a whole field is the
    /// fragment, 1 when a field starts with it, 2 otherwise (the relevance order).
    pub fn rank(&self, document: &str) -> u8 {
        match self {
            Self::Anywhere(text) if document.contains(&format!("\n{text}\n")) => 0,
            Self::Anywhere(text) if document.contains(&format!("\n{text}")) => 1,
            _ => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_folded_like_the_documents() {
        assert_eq!(
            fold_for_search("Müller-Lüdenscheidt"),
            "muller-ludenscheidt"
        );
        assert_eq!(fold_for_search("ÉLODIE"), "elodie");
        assert_eq!(phone_digits("+49 (30) 1234-56"), "4930123456");
        assert_eq!(phone_digits("0049 30 1234"), "49301234");
        assert_eq!(phone_digits("030/1234"), "0301234");
        assert_eq!(
            Fragment::of(" MÜLLER "),
            Some(Fragment::Anywhere("muller".into()))
        );
        assert_eq!(
            Fragment::of("+49 30 12"),
            Some(Fragment::Anywhere("493012".into()))
        );
        assert_eq!(Fragment::of("Li"), Some(Fragment::Start("li".into())));
        assert_eq!(Fragment::of("  "), None);
        let document = customer_fields_document("Anna", "Müller", "a@x.example", "", "", "");
        assert_eq!(Fragment::of("müller").map(|f| f.rank(&document)), Some(0));
        assert_eq!(Fragment::of("mül").map(|f| f.rank(&document)), Some(1));
        assert_eq!(Fragment::of("ller").map(|f| f.rank(&document)), Some(2));
    }
}
