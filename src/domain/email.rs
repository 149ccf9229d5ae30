//! Email addresses of customers.

use super::email_domain::normalise_domain;

/// The longest address accepted (RFC 5321's path limit less the angle brackets).
pub const MAX_EMAIL_LENGTH: usize = 254;

/// The normal form of an email address (`local@domain`, the domain lower-case ASCII), or
/// why `raw` is not one. The local part is kept as given: its case may matter to the mail
/// server, though Clientele compares addresses case-insensitively.
pub fn normalise_email(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("is required");
    }
    if trimmed.chars().count() > MAX_EMAIL_LENGTH {
        return Err("must be at most 254 characters long");
    }
    let Some((local, domain)) = trimmed.rsplit_once('@') else {
        return Err("must be an address like name@example.com");
    };
    let local_ok = (1..=64).contains(&local.chars().count())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    if !local_ok {
        return Err(
            "the part before @ must be 1 to 64 letters, digits or !#$%&'*+/=?^_`{|}~.- without leading, trailing or double dots",
        );
    }
    let domain =
        normalise_domain(domain).map_err(|_| "the part after @ is not a valid domain name")?;
    if domain == crate::model::ERASED_DOMAIN {
        return Err("the domain erased.invalid is reserved for the tombstones of erased customers");
    }
    Ok(format!("{local}@{domain}"))
}

/// The form an address is looked up by: its normal form (so `x@Bücher.de.` finds the
/// customer stored as `x@xn--bcher-kva.de`), or the text as given when it is no address at
/// all (and then matches nobody).
pub fn lookup_form(raw: &str) -> String {
    normalise_email(raw).unwrap_or_else(|_| raw.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_their_local_part_and_lower_case_their_domain() {
        assert_eq!(
            normalise_email(" Jane.Doe+news@Example.COM ").unwrap(),
            "Jane.Doe+news@example.com"
        );
        assert_eq!(
            normalise_email("ö@bücher.de").unwrap(),
            "ö@xn--bcher-kva.de"
        );
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for raw in [
            "",
            "plain",
            "@example.com",
            "jane@",
            "jane@localhost",
            "ja ne@example.com",
            ".jane@example.com",
            "jane.@example.com",
            "ja..ne@example.com",
            "jane@exa_mple.com",
            "jane(doe)@example.com",
        ] {
            assert!(normalise_email(raw).is_err(), "{raw:?} was accepted");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(normalise_email(&long_local).is_err());
    }
}
