//! Input validation: every field from outside is checked here before it reaches a store.

use crate::error::Field;
use crate::error::{Error, Result};

/// Characters that show nothing: zero-width spaces and joiners, direction marks, embeddings,
/// overrides and isolates, word joiners, the byte-order mark, the soft hyphen. Text made only of
/// these (and spaces) looks empty; inside an address they disguise it.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

/// Whether text shows nothing at all.
fn is_blank(value: &str) -> bool {
    value.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
}

/// A short name of `[a-z0-9_.-]` (upper case folded), `min..=max` characters.
fn handle(field: Field, value: &str, min: usize, max: usize) -> Result<String> {
    let folded = value.to_ascii_lowercase();
    let len = folded.chars().count();
    if len < min || len > max {
        return Err(Error::invalid(
            field,
            format!("must be {min} to {max} characters"),
        ));
    }
    if !folded.chars().all(is_name_char) {
        return Err(Error::invalid(
            field,
            "may contain only letters a-z, digits, '_', '.' and '-'",
        ));
    }
    Ok(folded)
}

/// Usernames: 3–32 of `[a-z0-9_.-]`, compared case-insensitively (stored lowercase).
pub(crate) fn username(value: &str) -> Result<String> {
    handle(Field::Username, value, 3, 32)
}

/// Room aliases: 3–64 of `[a-z0-9_.-]`, stored lowercase.
pub(crate) fn alias(value: &str) -> Result<String> {
    handle(Field::Alias, value, 3, 64)
}

/// Emails: one `@` between non-empty parts, no spaces, at most 254 bytes; stored lowercase.
pub(crate) fn email(value: &str) -> Result<String> {
    let value = value.trim().to_lowercase();
    let valid = value.len() <= 254
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
        && matches!(value.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(value)
    } else {
        Err(Error::invalid(Field::Email, "must be an email address"))
    }
}

/// Free text on one line: trimmed, `min..=max` characters, no control characters.
pub(crate) fn line(field: Field, value: &str, min: usize, max: usize) -> Result<String> {
    let value = value.trim();
    let len = value.chars().count();
    if len < min || len > max {
        return Err(Error::invalid(
            field,
            if min == 0 {
                format!("must be at most {max} characters")
            } else {
                format!("must be {min} to {max} characters")
            },
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "may not contain control characters"));
    }
    if min > 0 && is_blank(value) {
        return Err(Error::invalid(field, "must contain visible characters"));
    }
    Ok(value.to_owned())
}

/// An optional line: empty text counts as none.
pub(crate) fn optional_line(
    field: Field,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>> {
    match value {
        Some(value) => line(field, value, 0, max).map(|v| Some(v).filter(|v| !v.is_empty())),
        None => Ok(None),
    }
}

/// Passwords: at least `min` characters, at most 1 024 bytes (hashing cost must stay bounded).
pub(crate) fn password(value: &str, min: usize) -> Result<()> {
    if value.chars().count() < min {
        return Err(Error::invalid(
            Field::Password,
            format!("must be at least {min} characters"),
        ));
    }
    if value.len() > 1024 {
        return Err(Error::invalid(
            Field::Password,
            "must be at most 1024 bytes",
        ));
    }
    Ok(())
}

/// Message bodies: not blank, at most `max` characters. Kept as written (not trimmed).
pub(crate) fn body(value: &str, max: usize) -> Result<()> {
    if is_blank(value) {
        return Err(Error::invalid(Field::Body, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(
            Field::Body,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// Client transaction ids: 1 to `max` bytes of visible ASCII.
pub(crate) fn txn_id(value: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            Field::TxnId,
            format!("must be 1 to {max} visible ASCII characters"),
        ));
    }
    Ok(())
}

/// A reaction's key: an emoji or a shortcode, 1 to 64 bytes of visible text.
pub(crate) fn reaction_key(value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
        return Err(Error::invalid(
            Field::ReactionKey,
            "must be 1 to 64 bytes without control characters",
        ));
    }
    Ok(())
}

/// Message metadata: at most `max` bytes once serialized.
pub(crate) fn metadata(value: &serde_json::Value, max: usize) -> Result<()> {
    let size = serde_json::to_vec(value)
        .map_err(|_| Error::invalid(Field::Metadata, "must be JSON"))?
        .len();
    if size > max {
        return Err(Error::invalid(
            Field::Metadata,
            format!("must be at most {max} bytes as JSON"),
        ));
    }
    Ok(())
}

/// Page sizes: 1 to `max`, or `default` when not given.
pub(crate) fn limit(value: Option<u32>, default: u32, max: u32) -> Result<u32> {
    match value {
        None => Ok(default.clamp(1, max)),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(Error::invalid(Field::Limit, format!("must be 1 to {max}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_fold_case_and_reject_bad_characters() {
        assert_eq!(username("Alice_1").unwrap(), "alice_1");
        assert!(username("al").is_err());
        assert!(username(&"a".repeat(33)).is_err());
        assert!(username("al ice").is_err());
        assert!(username("ålice").is_err());
    }

    #[test]
    fn emails_need_one_at_between_parts() {
        assert_eq!(email(" Bob@Example.COM ").unwrap(), "bob@example.com");
        for bad in ["bob", "@x", "bob@", "a@b@c", "a b@c"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_must_have_text_and_fit() {
        assert!(body("hi", 5).is_ok());
        assert!(body("  \n", 5).is_err());
        assert!(body("héllo!", 5).is_err());
        assert!(body("héllo", 5).is_ok());
    }

    #[test]
    fn limits_default_and_bound() {
        assert_eq!(limit(None, 50, 200).unwrap(), 50);
        assert!(limit(Some(0), 50, 200).is_err());
        assert!(limit(Some(201), 50, 200).is_err());
    }
}
