//! Checked identifiers: agency ids, role names and user ids. Each is ASCII,
//! non-empty, bounded, made of `[a-z0-9._-]` (user ids may also hold
//! upper-case letters and `@`), and never the reserved Casbin domain
//! `DEFAULT`. Checking here keeps hostile strings away from Casbin, SQL and
//! SPIFFE URIs alike.

use crate::error::{CoreError, CoreResult};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest identifier accepted anywhere.
pub const MAX_IDENTIFIER_LEN: usize = 64;

fn check_identifier(field: &str, value: &str, allow_user_chars: bool) -> CoreResult<()> {
    if value.is_empty() {
        return Err(CoreError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_IDENTIFIER_LEN {
        return Err(CoreError::invalid(
            field,
            format!("must be at most {MAX_IDENTIFIER_LEN} bytes, got {}", value.len()),
        ));
    }
    if value.eq_ignore_ascii_case("default") {
        return Err(CoreError::invalid(field, "`DEFAULT` is reserved"));
    }
    let allowed = |c: char| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, '-' | '_' | '.')
            || (allow_user_chars && (c.is_ascii_uppercase() || c == '@'))
    };
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(CoreError::invalid(field, format!("character {bad:?} is not allowed")));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(CoreError::invalid(field, "must start with a letter or digit"));
    }
    Ok(())
}

macro_rules! identifier_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $user_chars:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `value` and wraps it; the error names the field.
            pub fn parse(value: &str) -> CoreResult<Self> {
                check_identifier($field, value, $user_chars)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = CoreError;
            fn try_from(value: String) -> CoreResult<Self> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = CoreError;
            fn from_str(value: &str) -> CoreResult<Self> {
                Self::parse(value)
            }
        }
    };
}

identifier_type!(
    /// An agency's id, such as `phelps-so`; also used for region names.
    AgencyId,
    "agency",
    false
);
identifier_type!(
    /// A role name, such as `dispatcher` or `cit_officer`.
    RoleName,
    "role",
    false
);
identifier_type!(
    /// A person's id within their agency, as in their certificate.
    UserId,
    "user",
    true
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_identifiers() {
        assert_eq!(AgencyId::parse("phelps-so").unwrap().as_str(), "phelps-so");
        assert!(RoleName::parse("cit_officer").is_ok());
        assert!(UserId::parse("J.Doe@rolla").is_ok());
    }

    #[test]
    fn refuses_empty_long_reserved_and_foreign_characters() {
        for bad in [
            "",
            "DEFAULT",
            "default",
            "Phelps",
            "ph elps",
            "phelps\u{200b}so",
            "é",
            "-x",
            "a/b",
            "a,b",
        ] {
            assert!(AgencyId::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(AgencyId::parse(&"a".repeat(MAX_IDENTIFIER_LEN)).is_ok());
        let error = AgencyId::parse(&"a".repeat(MAX_IDENTIFIER_LEN + 1)).unwrap_err();
        assert!(error.to_string().contains("at most 64"), "{error}");
        let error = UserId::parse(&"x".repeat(10_000)).unwrap_err();
        assert!(matches!(error, CoreError::InvalidArgument { ref field, .. } if field == "user"));
    }
}
