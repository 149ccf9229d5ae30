//! Email domains of organisations: syntax, normal form, and the free-mail providers whose
//! domains never identify an organisation.

/// Free-mail providers: their domains, and every domain below them, are never an
/// organisation's. Kept sorted.
pub const FREE_MAIL_DOMAINS: &[&str] = &[
    "126.com",
    "163.com",
    "aim.com",
    "aol.com",
    "aol.de",
    "arcor.de",
    "bluewin.ch",
    "comcast.net",
    "email.de",
    "fastmail.com",
    "freenet.de",
    "gmail.com",
    "gmx.at",
    "gmx.ch",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "googlemail.com",
    "hey.com",
    "hotmail.co.uk",
    "hotmail.com",
    "hotmail.de",
    "hotmail.fr",
    "icloud.com",
    "inbox.ru",
    "laposte.net",
    "libero.it",
    "live.com",
    "live.de",
    "mac.com",
    "mail.com",
    "mail.de",
    "mail.ru",
    "mailbox.org",
    "me.com",
    "msn.com",
    "naver.com",
    "orange.fr",
    "outlook.com",
    "outlook.de",
    "posteo.de",
    "proton.me",
    "protonmail.com",
    "qq.com",
    "rambler.ru",
    "seznam.cz",
    "t-online.de",
    "tutanota.com",
    "web.de",
    "wp.pl",
    "yahoo.co.uk",
    "yahoo.com",
    "yahoo.de",
    "yahoo.fr",
    "yandex.com",
    "yandex.ru",
    "ymail.com",
    "zoho.com",
];

/// The normal form of an email domain (lower-case ASCII, internationalised names as
/// punycode, no trailing dot), or why `raw` is not one.
pub fn normalise_domain(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err("must not be empty");
    }
    let ascii = match url::Host::parse(trimmed) {
        Ok(url::Host::Domain(domain)) => domain,
        Ok(_) => return Err("must be a domain name, not an IP address"),
        Err(_) => return Err("is not a valid domain name"),
    };
    if ascii.len() > 253 {
        return Err("must be at most 253 characters long");
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err("must have at least two labels, like example.com");
    }
    for label in &labels {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Err(
                "labels must be 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen",
            );
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the top-level domain must not be numeric");
    }
    Ok(ascii)
}

/// `domain` itself and every parent domain with at least two labels, most specific first:
/// `a.b.example.com` → `a.b.example.com`, `b.example.com`, `example.com`.
pub fn self_and_parents(domain: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(domain);
    std::iter::from_fn(move || {
        let current = rest?;
        rest = current
            .split_once('.')
            .map(|(_, parent)| parent)
            .filter(|parent| parent.contains('.'));
        Some(current)
    })
}

/// True when `domain` (normal form) is a free-mail domain or lies below one.
pub fn is_free_mail(domain: &str) -> bool {
    self_and_parents(domain).any(|candidate| FREE_MAIL_DOMAINS.binary_search(&candidate).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_free_mail_list_is_sorted() {
        assert!(FREE_MAIL_DOMAINS.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn domains_are_lower_cased_and_internationalised_names_become_punycode() {
        assert_eq!(normalise_domain("Example.COM").unwrap(), "example.com");
        assert_eq!(normalise_domain("example.com.").unwrap(), "example.com");
        assert_eq!(normalise_domain("bücher.de").unwrap(), "xn--bcher-kva.de");
    }

    #[test]
    fn malformed_domains_are_refused() {
        for raw in [
            "",
            "com",
            "-a.com",
            "a-.com",
            "a..com",
            "a_b.com",
            "exa mple.com",
            "192.168.0.1",
            "example.123",
            "[::1]",
        ] {
            assert!(normalise_domain(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn parents_run_from_the_domain_up_to_two_labels() {
        let all: Vec<&str> = self_and_parents("a.b.example.com").collect();
        assert_eq!(all, ["a.b.example.com", "b.example.com", "example.com"]);
        let one: Vec<&str> = self_and_parents("example.com").collect();
        assert_eq!(one, ["example.com"]);
    }

    #[test]
    fn free_mail_domains_and_their_subdomains_are_free_mail() {
        assert!(is_free_mail("gmail.com"));
        assert!(is_free_mail("eu.gmail.com"));
        assert!(!is_free_mail("example.com"));
        assert!(!is_free_mail("notgmail.com"));
    }
}
