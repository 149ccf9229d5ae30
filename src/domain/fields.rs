//! Field rules shared by every resource: text lengths and characters, custom fields,
//! request ids. Validators collect every violation of a request instead of stopping at the
//! first, so that a client learns everything wrong at once.

use std::collections::BTreeMap;

use crate::error::{Error, FieldViolation, Result};

/// The violations found so far in one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Records that `field` is wrong.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Whether anything was recorded.
    pub fn has_any(&self) -> bool {
        !self.0.is_empty()
    }

    /// `Ok` if nothing was recorded, else `InvalidArgument` with every violation.
    pub fn finish(self) -> Result<()> {
        Error::check(self.0)
    }
}

/// A one-line text: trimmed, at most `max` characters, no control characters. An empty
/// result is a violation when `required`.
pub fn single_line(
    violations: &mut Violations,
    field: &str,
    raw: &str,
    max: usize,
    required: bool,
) -> String {
    let value = raw.trim();
    if required && value.is_empty() {
        violations.add(field, "is required");
    } else if value.chars().count() > max {
        violations.add(field, format!("must be at most {max} characters long"));
    } else if value.chars().any(char::is_control) {
        violations.add(field, "must not contain control characters or line breaks");
    }
    value.to_owned()
}

/// A multi-line text: at most `max` characters; line breaks and tabs are the only control
/// characters allowed.
pub fn multi_line(violations: &mut Violations, field: &str, raw: &str, max: usize) -> String {
    if raw.chars().count() > max {
        violations.add(field, format!("must be at most {max} characters long"));
    } else if raw
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        violations.add(
            field,
            "must not contain control characters other than line breaks and tabs",
        );
    }
    raw.to_owned()
}

/// Most custom fields one record may have.
pub const MAX_CUSTOM_FIELDS: usize = 50;

/// Site-specific attributes: at most [`MAX_CUSTOM_FIELDS`] entries, keys of 1 to 64 letters,
/// digits and `_ . -` starting with a letter, values of at most 2000 characters.
pub fn custom_fields(
    violations: &mut Violations,
    field: &str,
    raw: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    if raw.len() > MAX_CUSTOM_FIELDS {
        violations.add(
            field,
            format!("must have at most {MAX_CUSTOM_FIELDS} entries"),
        );
    }
    for (key, value) in raw {
        if !custom_field_key_ok(key) {
            violations.add(
                format!("{field}[{key:?}]"),
                "keys must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter",
            );
        } else if value.chars().count() > 2000 {
            violations.add(
                format!("{field}[{key:?}]"),
                "values must be at most 2000 characters long",
            );
        } else if value.chars().any(char::is_control) {
            violations.add(
                format!("{field}[{key:?}]"),
                "values must not contain control characters",
            );
        }
    }
    raw.clone()
}

/// Whether `key` may be a custom field's key: 1 to 64 letters, digits and `_ . -`, starting
/// with a letter.
pub fn custom_field_key_ok(key: &str) -> bool {
    (1..=64).contains(&key.chars().count())
        && key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A list's condition on a custom field: a valid key, a value of at most 2000 characters
/// without control characters.
pub fn custom_field_filter(violations: &mut Violations, filter: Option<&(String, String)>) {
    let Some((key, value)) = filter else {
        return;
    };
    if !custom_field_key_ok(key) {
        violations.add(
            "custom_field.key",
            "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter",
        );
    }
    if value.chars().count() > 2000 || value.chars().any(char::is_control) {
        violations.add(
            "custom_field.value",
            "must be at most 2000 characters long, without control characters",
        );
    }
}

/// The fields an update mask names, out of `all` (named by `name`). `*` names all of them;
/// `refusal` says why a path that names no updatable field is refused, if it is a known
/// field (immutable, output only); otherwise the path names no field at all.
/// Why an update mask may not name `path` when it is one of the fields every resource's
/// server sets (`id`, `create_time`, `update_time`, `etag`); `None` for any other path.
pub fn output_only(path: &str) -> Option<String> {
    matches!(path, "id" | "create_time" | "update_time" | "etag")
        .then(|| format!("{path} is output only"))
}

pub fn fields_of_mask<F: Copy + PartialEq>(
    paths: &[String],
    all: &[F],
    name: impl Fn(F) -> &'static str,
    refusal: impl Fn(&str) -> Option<String>,
) -> Result<Vec<F>> {
    let mut violations = Violations::default();
    let mut fields: Vec<F> = Vec::new();
    if paths.is_empty() {
        violations.add("update_mask", "is required: name the fields to change");
    }
    for (index, path) in paths.iter().enumerate() {
        let field = format!("update_mask.paths[{index}]");
        if path == "*" {
            fields.extend_from_slice(all);
        } else if let Some(known) = all.iter().find(|f| name(**f) == path) {
            fields.push(*known);
        } else {
            let why =
                refusal(path).unwrap_or_else(|| format!("{path:?} is not an updatable field"));
            violations.add(field, why);
        }
    }
    violations.finish()?;
    let mut unique = Vec::with_capacity(fields.len());
    for field in fields {
        if !unique.contains(&field) {
            unique.push(field);
        }
    }
    Ok(unique)
}

/// A hash of a create request's body, to tell a retry from a different request with the same
/// `request_id`.
pub fn request_hash(input: &impl serde::Serialize) -> String {
    use sha2::{Digest, Sha256};
    let encoded = serde_json::to_vec(input).unwrap_or_default();
    Sha256::digest(&encoded)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a create answers: the resource it made, or for a retry of the same request the one
/// the first request made (read with `read`); the same `request_id` with another request is
/// [`Error::RequestIdReused`].
pub async fn created<T, F>(
    inserted: crate::store::Inserted<T>,
    key: Option<&crate::store::IdempotencyKey>,
    read: impl FnOnce(uuid::Uuid) -> F,
) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    match inserted {
        crate::store::Inserted::New(resource) => Ok(resource),
        crate::store::Inserted::Replay {
            resource_id,
            request_hash,
        } => {
            if key.is_none_or(|key| key.request_hash != request_hash) {
                return Err(crate::error::Error::RequestIdReused);
            }
            read(resource_id).await
        }
    }
}

/// The idempotency key of `caller`'s create `operation` with `request_id` and body `input`.
pub fn idempotency_key(
    operation: &'static str,
    caller: &crate::model::Actor,
    request_id: Option<String>,
    input: &impl serde::Serialize,
) -> Option<crate::store::IdempotencyKey> {
    request_id.map(|request_id| crate::store::IdempotencyKey {
        operation,
        caller: caller.as_str().to_owned(),
        request_id,
        request_hash: request_hash(input),
    })
}

/// An optional idempotency key: empty means none; otherwise 1 to 128 printable ASCII
/// characters.
pub fn request_id(raw: &str) -> Result<Option<String>> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > 128 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "request_id",
            "must be 1 to 128 printable ASCII characters without spaces",
        ));
    }
    Ok(Some(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_text_is_trimmed_and_checked() {
        let mut v = Violations::default();
        assert_eq!(single_line(&mut v, "name", "  Acme  ", 10, true), "Acme");
        assert!(v.finish().is_ok());

        let mut v = Violations::default();
        single_line(&mut v, "name", "   ", 10, true);
        single_line(&mut v, "city", "a\nb", 10, false);
        single_line(&mut v, "zip", "12345678901", 10, false);
        let Err(Error::InvalidArgument { violations, .. }) = v.finish() else {
            panic!("expected violations");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["name", "city", "zip"]);
    }

    #[test]
    fn request_ids_are_printable_ascii() {
        assert_eq!(request_id("").unwrap(), None);
        assert_eq!(request_id("abc-1").unwrap().as_deref(), Some("abc-1"));
        assert!(request_id("with space").is_err());
        assert!(request_id(&"x".repeat(129)).is_err());
    }
}
