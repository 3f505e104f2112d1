//! Checking a Casbin model before any rule is loaded into it. The model must
//! have flagnet's request, policy and role definitions, an effect in which an
//! explicit deny beats any allow, and a matcher built only from request and
//! policy attributes, string literals, `==`/`!=`, `&&`/`||`/`!`, parentheses
//! and the role functions `g`, `g2` and `g3`. Anything else (`eval`,
//! `regexMatch`, `keyMatch*`, `globMatch`, `ipMatch`, a custom function, an
//! operator such as `in` or `<`) is refused, because those are where Casbin
//! panics, loops or matches more than it says.
//!
//! The check reads the model as Casbin itself parsed it (escaped attribute
//! names such as `r_role`), so what is checked is what Casbin will run.

use crate::rules::PolicyError;
use casbin::{DefaultModel, Model};

/// flagnet's own matcher, as Casbin stores it, with whitespace removed. A model
/// with exactly this matcher is decided by the compiled index; see
/// [`crate::compiled`].
const FLAGNET_MATCHER: &str = "g3(r_role,p_role)&&(p_actor==\"any\"||p_actor==r_actor||g2(r_actor,p_actor))&&(p_owner==\"any\"||(p_owner==\"same\"&&r_owner==r_actor)||p_owner==r_owner||g2(r_owner,p_owner))&&r_field==p_field&&r_purpose==p_purpose";
const DENY_WINS_EFFECT: &str = "some(where(p_eft==allow))&&!some(where(p_eft==deny))";
const REQUEST_FIELDS: [&str; 5] = ["role", "actor", "owner", "field", "purpose"];
const POLICY_FIELDS: [&str; 6] = ["role", "actor", "owner", "field", "purpose", "eft"];
const ALLOWED_FUNCTIONS: [&str; 3] = ["g", "g2", "g3"];

/// Which matcher a checked model has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatcherShape {
    /// exactly flagnet's matcher (whitespace aside): decisions are compiled
    Flagnet,
    /// another matcher that passed the check: decisions are enumerated through Casbin
    Other,
}

fn squeeze(value: &str) -> String {
    value.chars().filter(|c| !c.is_whitespace()).collect()
}

fn model_error(reason: impl Into<String>) -> PolicyError {
    PolicyError::Model(reason.into())
}

/// Checks a parsed model; the error says which section is wrong and why.
pub(crate) fn check_model(model: &DefaultModel) -> Result<MatcherShape, PolicyError> {
    let sections = model.get_model();
    let expected: [(&str, &[&str]); 5] = [
        ("r", &["r"]),
        ("p", &["p"]),
        ("g", &["g", "g2", "g3"]),
        ("e", &["e"]),
        ("m", &["m"]),
    ];
    for (section, keys) in sections {
        let Some((_, allowed_keys)) = expected.iter().find(|(name, _)| name == section) else {
            return Err(model_error(format!("unexpected section `{section}`")));
        };
        if let Some(extra) = keys.keys().find(|key| !allowed_keys.contains(&key.as_str())) {
            return Err(model_error(format!(
                "unexpected definition `{extra}` in section `{section}`"
            )));
        }
    }
    let raw_value = |section: &str, key: &str| -> Result<String, PolicyError> {
        sections
            .get(section)
            .and_then(|assertions| assertions.get(key))
            .map(|assertion| assertion.value.clone())
            .ok_or_else(|| model_error(format!("the model has no `{key}` definition")))
    };
    let value = |section: &str, key: &str| raw_value(section, key).map(|raw| squeeze(&raw));
    if value("r", "r")? != REQUEST_FIELDS.join(",") {
        return Err(model_error(format!(
            "the request definition must be `r = {}`",
            REQUEST_FIELDS.join(", ")
        )));
    }
    if value("p", "p")? != POLICY_FIELDS.join(",") {
        return Err(model_error(format!(
            "the policy definition must be `p = {}`",
            POLICY_FIELDS.join(", ")
        )));
    }
    for (key, shape) in [("g", "_,_,_"), ("g2", "_,_"), ("g3", "_,_")] {
        if value("g", key)? != shape {
            return Err(model_error(format!(
                "role definition `{key}` must be `{key} = {}`",
                shape.replace(',', ", ")
            )));
        }
    }
    if value("e", "e")? != DENY_WINS_EFFECT {
        return Err(model_error(
            "the policy effect must be `some(where (p.eft == allow)) && !some(where (p.eft == deny))`, so that an \
             explicit deny beats any allow",
        ));
    }
    check_matcher(&raw_value("m", "m")?)?;
    Ok(if value("m", "m")? == FLAGNET_MATCHER {
        MatcherShape::Flagnet
    } else {
        MatcherShape::Other
    })
}

/// Walks the matcher token by token; only the whitelisted forms pass.
fn check_matcher(matcher: &str) -> Result<(), PolicyError> {
    let bytes = matcher.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &matcher[at..];
        let next = bytes[at];
        if next.is_ascii_whitespace() {
            at += 1;
        } else if next == b'"' {
            let Some(close) = rest[1..].find('"') else {
                return Err(model_error("the matcher has an unterminated string"));
            };
            let literal = &rest[1..=close];
            if !literal
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
            {
                return Err(model_error(format!(
                    "the matcher's string \"{literal}\" may hold only [a-z0-9._-]"
                )));
            }
            at += close + 2;
        } else if next.is_ascii_alphabetic() || next == b'_' {
            let word_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..word_len];
            let is_call = rest[word_len..].trim_start().starts_with('(');
            let is_attribute =
                |prefix: &str, fields: &[&str]| word.strip_prefix(prefix).is_some_and(|field| fields.contains(&field));
            if is_call && !ALLOWED_FUNCTIONS.contains(&word) {
                return Err(model_error(format!(
                    "the matcher may call only g, g2 and g3; found `{word}(`: eval, regexMatch, keyMatch, \
                     globMatch, ipMatch and custom functions are not allowed"
                )));
            }
            if !is_call && !is_attribute("r_", &REQUEST_FIELDS) && !is_attribute("p_", &POLICY_FIELDS[..5]) {
                return Err(model_error(format!(
                    "the matcher may use only request and policy attributes, found `{word}`"
                )));
            }
            at += word_len;
        } else if rest.starts_with("==") || rest.starts_with("!=") || rest.starts_with("&&") || rest.starts_with("||") {
            at += 2;
        } else if matches!(next, b'!' | b'(' | b')' | b',') {
            at += 1;
        } else {
            let found = rest.chars().next().unwrap_or_default();
            return Err(model_error(format!(
                "the matcher may use only ==, !=, &&, || and !; found `{found}`"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_MODEL: &str = include_str!("../../../policies/model.conf");

    async fn check(text: &str) -> Result<MatcherShape, PolicyError> {
        let model = DefaultModel::from_str(text)
            .await
            .map_err(|error| PolicyError::Model(error.to_string()))?;
        check_model(&model)
    }

    fn with_matcher(matcher: &str) -> String {
        let start = DEFAULT_MODEL.find("m = ").expect("the default model has a matcher");
        format!("{}m = {matcher}\n", &DEFAULT_MODEL[..start])
    }

    #[tokio::test]
    async fn the_default_model_is_flagnets_own() {
        assert_eq!(check(DEFAULT_MODEL).await.unwrap(), MatcherShape::Flagnet);
        let reflowed = DEFAULT_MODEL.replace(" && ", "&&").replace("==", " == ");
        assert_eq!(check(&reflowed).await.unwrap(), MatcherShape::Flagnet);
    }

    #[tokio::test]
    async fn a_different_equality_matcher_is_accepted_but_not_compiled() {
        let own_agency_only =
            with_matcher("g3(r.role, p.role) && r.actor == r.owner && r.field == p.field && r.purpose == p.purpose");
        assert_eq!(check(&own_agency_only).await.unwrap(), MatcherShape::Other);
    }

    #[tokio::test]
    async fn refuses_functions_in_the_matcher() {
        for (matcher, expected) in [
            ("g3(r.role, p.role) && eval(p.purpose)", "`eval(`"),
            ("g3(r.role, p.role) && regexMatch(r.actor, p.actor)", "`regexMatch(`"),
            ("g3(r.role, p.role) && keyMatch(r.owner, p.owner)", "`keyMatch(`"),
            ("g3(r.role, p.role) && keyMatch2(r.owner, p.owner)", "`keyMatch2(`"),
            ("g3(r.role, p.role) && globMatch(r.field, p.field)", "`globMatch(`"),
            ("g3(r.role, p.role) && ipMatch(r.actor, p.actor)", "`ipMatch(`"),
            ("g3(r.role, p.role) && custom(r.actor)", "`custom(`"),
            ("g3(r.role, p.role) && keyMatch (r.owner, p.owner)", "`keyMatch(`"),
        ] {
            let model = with_matcher(matcher);
            let error = check(&model).await.unwrap_err().to_string();
            assert!(error.contains(expected), "{matcher}: {error}");
        }
    }

    #[tokio::test]
    async fn refuses_other_operators_and_words() {
        for (matcher, expected) in [
            ("g3(r.role, p.role) && r.actor in (\"a\", \"b\")", "found `in"),
            ("g3(r.role, p.role) && r.actor < p.actor", "found `<`"),
            ("g3(r.role, p.role) || true", "found `true`"),
            ("g3(r.role, p.role) && r.actor == \"Rolla\"", "may hold only"),
            ("g3(r.role, p.role) && r.actor == \"a", "unterminated"),
            ("g3(r.role, p.role) && p.eft == \"allow\"", "found `p_eft`"),
            ("g3(r.role, p.role) && r.actor + p.actor", "found `+`"),
        ] {
            let model = with_matcher(matcher);
            let error = check(&model).await.unwrap_err().to_string();
            assert!(error.contains(expected), "{matcher}: {error}");
        }
    }

    #[tokio::test]
    async fn refuses_an_effect_where_deny_does_not_win() {
        let allow_only = DEFAULT_MODEL.replace(
            "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
            "e = some(where (p.eft == allow))",
        );
        assert_ne!(allow_only, DEFAULT_MODEL);
        let error = check(&allow_only).await.unwrap_err().to_string();
        assert!(error.contains("explicit deny beats any allow"), "{error}");
    }

    #[tokio::test]
    async fn refuses_other_definitions() {
        for (from, to, expected) in [
            (
                "r = role, actor, owner, field, purpose",
                "r = role, actor, owner, field",
                "request definition",
            ),
            (
                "p = role, actor, owner, field, purpose, eft",
                "p = role, actor, owner, field, purpose, eft, extra",
                "policy definition",
            ),
            ("g3 = _, _", "g3 = _, _, _", "role definition `g3`"),
            ("g2 = _, _\n", "g2 = _, _\ng4 = _, _\n", "unexpected definition `g4`"),
        ] {
            let model = DEFAULT_MODEL.replace(from, to);
            assert_ne!(model, DEFAULT_MODEL, "{from}");
            let error = check(&model).await.unwrap_err().to_string();
            assert!(error.contains(expected), "{to}: {error}");
        }
        let second_matcher = format!("{DEFAULT_MODEL}\nm2 = r.actor == p.actor\n");
        let error = check(&second_matcher).await.unwrap_err().to_string();
        assert!(error.contains("unexpected definition `m2`"), "{error}");
    }
}
