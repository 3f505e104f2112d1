//! Reading and checking policy rows before they reach Casbin. Every
//! identifier must be a checked [`AgencyId`]/[`RoleName`]-shaped string, every
//! effect exactly `allow` or `deny`, every row the right length; a bad row is
//! refused with its file and line, never passed on.

use flagnet_core::{AgencyId, FieldClass, Purpose, RoleName};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The words a policy row may use for an agency position besides ids and regions.
pub const ANY_AGENCY: &str = "any";
pub const SAME_AGENCY: &str = "same";
/// The operation object and purpose that govern records maintenance.
pub const FLAG_RECORDS_OBJECT: &str = "flag_records";
pub const RECORDS_MAINTENANCE: &str = "records_maintenance";
/// Casbin silently caps role chains at this depth; deeper chains are refused.
pub const MAX_ROLE_CHAIN_DEPTH: usize = 9;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{origin}:{line}: {reason}")]
    BadRule {
        origin: String,
        line: usize,
        reason: String,
    },
    #[error("policy model: {0}")]
    Model(String),
}

/// One checked row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `p, role, actor, owner, field, purpose, eft`
    Permission {
        role: String,
        actor: String,
        owner: String,
        object: String,
        purpose: String,
        allow: bool,
    },
    /// `g, user, role, agency`
    RoleAssignment { user: String, role: String, agency: String },
    /// `g2, agency, region`
    Region { agency: String, region: String },
    /// `g3, role, parent role`
    RoleInheritance { role: String, parent: String },
}

impl Rule {
    /// The row as Casbin takes it: policy type and values.
    pub fn casbin_row(&self) -> (&'static str, Vec<String>) {
        match self {
            Rule::Permission {
                role,
                actor,
                owner,
                object,
                purpose,
                allow,
            } => (
                "p",
                vec![
                    role.clone(),
                    actor.clone(),
                    owner.clone(),
                    object.clone(),
                    purpose.clone(),
                    if *allow { "allow" } else { "deny" }.to_owned(),
                ],
            ),
            Rule::RoleAssignment { user, role, agency } => ("g", vec![user.clone(), role.clone(), agency.clone()]),
            Rule::Region { agency, region } => ("g2", vec![agency.clone(), region.clone()]),
            Rule::RoleInheritance { role, parent } => ("g3", vec![role.clone(), parent.clone()]),
        }
    }
}

/// The model text and every rule of one policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    pub model: String,
    pub rules: Vec<Rule>,
}

/// Where a policy comes from: a directory holding `model.conf`, `policy.csv`
/// and `roles.csv`.
#[derive(Debug, Clone)]
pub struct PolicySource {
    pub dir: PathBuf,
}

impl PolicySource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn read(&self) -> Result<RuleSet, PolicyError> {
        let model = read_file(&self.dir.join("model.conf"))?;
        let mut rules = Vec::new();
        for name in ["policy.csv", "roles.csv"] {
            let path = self.dir.join(name);
            let text = read_file(&path)?;
            rules.extend(parse_rules(&path.display().to_string(), &text)?);
        }
        check_role_chains(&rules)?;
        Ok(RuleSet { model, rules })
    }
}

fn read_file(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|error| PolicyError::Unreadable {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

/// Parses CSV policy text; blank lines and `#` comments are skipped.
pub fn parse_rules(origin: &str, text: &str) -> Result<Vec<Rule>, PolicyError> {
    let mut rules = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| PolicyError::BadRule {
            origin: origin.to_owned(),
            line: index + 1,
            reason,
        };
        rules.push(parse_rule(line).map_err(bad)?);
    }
    Ok(rules)
}

fn parse_rule(line: &str) -> Result<Rule, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let expect = |count: usize| {
        if fields.len() == count {
            Ok(())
        } else {
            Err(format!(
                "rule `{line}`: a `{}` rule has {count} fields, found {}",
                fields[0],
                fields.len()
            ))
        }
    };
    let in_rule = |error: String| format!("rule `{line}`: {error}");
    match fields[0] {
        "p" => {
            expect(7)?;
            let role = role_name(fields[1]).map_err(in_rule)?;
            let actor = agency_position(fields[2], false).map_err(in_rule)?;
            let owner = agency_position(fields[3], true).map_err(in_rule)?;
            let object = fields[4];
            let purpose = fields[5];
            let is_records_rule = object == FLAG_RECORDS_OBJECT && purpose == RECORDS_MAINTENANCE;
            if !is_records_rule {
                FieldClass::parse(object).map_err(|error| in_rule(error.to_string()))?;
                Purpose::parse(purpose).map_err(|error| in_rule(error.to_string()))?;
            }
            let allow = match fields[6] {
                "allow" => true,
                "deny" => false,
                other => {
                    return Err(in_rule(format!(
                        "effect must be exactly `allow` or `deny`, found `{other}`"
                    )));
                }
            };
            Ok(Rule::Permission {
                role,
                actor,
                owner,
                object: object.to_owned(),
                purpose: purpose.to_owned(),
                allow,
            })
        }
        "g" => {
            expect(4)?;
            let user = flagnet_core::UserId::parse(fields[1]).map_err(|error| in_rule(error.to_string()))?;
            Ok(Rule::RoleAssignment {
                user: user.to_string(),
                role: role_name(fields[2]).map_err(in_rule)?,
                agency: agency_id(fields[3]).map_err(in_rule)?,
            })
        }
        "g2" => {
            expect(3)?;
            Ok(Rule::Region {
                agency: agency_id(fields[1]).map_err(in_rule)?,
                region: agency_id(fields[2]).map_err(in_rule)?,
            })
        }
        "g3" => {
            expect(3)?;
            Ok(Rule::RoleInheritance {
                role: role_name(fields[1]).map_err(in_rule)?,
                parent: role_name(fields[2]).map_err(in_rule)?,
            })
        }
        other => Err(format!(
            "rule `{line}`: unknown rule type `{other}`; expected p, g, g2 or g3"
        )),
    }
}

fn role_name(value: &str) -> Result<String, String> {
    RoleName::parse(value)
        .map(|role| role.to_string())
        .map_err(|error| error.to_string())
}

fn agency_id(value: &str) -> Result<String, String> {
    if value == ANY_AGENCY || value == SAME_AGENCY {
        return Err(format!("`{value}` is reserved and cannot name an agency or region"));
    }
    AgencyId::parse(value)
        .map(|agency| agency.to_string())
        .map_err(|error| error.to_string())
}

fn agency_position(value: &str, allow_same: bool) -> Result<String, String> {
    match value {
        ANY_AGENCY => Ok(value.to_owned()),
        SAME_AGENCY if allow_same => Ok(value.to_owned()),
        SAME_AGENCY => Err("`same` may only stand in the owner position".to_owned()),
        _ => agency_id(value),
    }
}

/// Refuses inheritance cycles and chains deeper than Casbin follows.
fn check_role_chains(rules: &[Rule]) -> Result<(), PolicyError> {
    let parents: Vec<(&str, &str)> = rules
        .iter()
        .filter_map(|rule| match rule {
            Rule::RoleInheritance { role, parent } => Some((role.as_str(), parent.as_str())),
            _ => None,
        })
        .collect();
    fn depth<'a>(role: &'a str, parents: &[(&'a str, &'a str)], seen: &mut Vec<&'a str>) -> Result<usize, String> {
        if seen.contains(&role) {
            return Err(format!("role inheritance cycle through `{role}`"));
        }
        seen.push(role);
        let mut deepest = 0;
        for (child, parent) in parents {
            if *child == role {
                deepest = deepest.max(1 + depth(parent, parents, seen)?);
            }
        }
        seen.pop();
        Ok(deepest)
    }
    for (role, _) in &parents {
        let chain = depth(role, &parents, &mut Vec::new()).map_err(|reason| PolicyError::BadRule {
            origin: "policy".into(),
            line: 0,
            reason,
        })?;
        if chain > MAX_ROLE_CHAIN_DEPTH {
            return Err(PolicyError::BadRule {
                origin: "policy".into(),
                line: 0,
                reason: format!("role chain from `{role}` is {chain} deep; at most {MAX_ROLE_CHAIN_DEPTH} is allowed"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_default_policy() {
        let rules = PolicySource::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies"))
            .read()
            .unwrap();
        assert!(
            rules
                .rules
                .iter()
                .any(|rule| matches!(rule, Rule::RoleInheritance { role, .. } if role == "cit_officer"))
        );
        assert!(rules.model.contains("[matchers]"));
    }

    #[test]
    fn refuses_bad_rows_naming_them() {
        for (row, expected) in [
            (
                "p, dispatcher, any, same, presence, emergency_response, Deny",
                "exactly `allow` or `deny`",
            ),
            ("p, dispatcher, any, same, presence, emergency_response", "7 fields"),
            (
                "p, dispatcher, any, same, presence, emergency_response, allow, extra",
                "7 fields",
            ),
            ("p, dispatcher, any, same, presence, eval(1), allow", "purpose"),
            (
                "p, dispatcher, any, same, regexMatch(r.field), emergency_response, allow",
                "field class",
            ),
            ("p, DEFAULT, any, same, presence, emergency_response, allow", "reserved"),
            (
                "p, dispatcher, same, same, presence, emergency_response, allow",
                "owner position",
            ),
            (
                "p, dispätcher, any, same, presence, emergency_response, allow",
                "not allowed",
            ),
            ("g, alice, dispatcher", "4 fields"),
            ("g2, rolla-pd, any", "reserved"),
            ("g4, a, b", "unknown rule type"),
            ("p, , any, same, presence, emergency_response, allow", "empty"),
        ] {
            let error = parse_rules("test.csv", row).unwrap_err().to_string();
            assert!(error.contains(expected), "{row}: {error}");
            assert!(error.starts_with("test.csv:1: rule `"), "{error}");
        }
    }

    #[test]
    fn refuses_deep_and_cyclic_role_chains() {
        let chain: String = (0..11).map(|i| format!("g3, r{i}, r{}\n", i + 1)).collect();
        let rules = parse_rules("t", &chain).unwrap();
        assert!(check_role_chains(&rules).unwrap_err().to_string().contains("deep"));
        let ok: String = (0..9).map(|i| format!("g3, r{i}, r{}\n", i + 1)).collect();
        check_role_chains(&parse_rules("t", &ok).unwrap()).unwrap();
        let cycle = parse_rules("t", "g3, a, b\ng3, b, a").unwrap();
        assert!(check_role_chains(&cycle).unwrap_err().to_string().contains("cycle"));
    }
}
