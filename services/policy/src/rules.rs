//! Reading and checking policy rows before they reach Casbin. Every
//! identifier must be a checked [`AgencyId`]/[`RoleName`]-shaped string
//! (ASCII, non-empty, at most 64 bytes, never `DEFAULT`), every effect exactly
//! `allow` or `deny`, every row the right length; no row may carry a function
//! call, a pattern or a wildcard (Casbin's `eval`, `regexMatch`, `keyMatch*`,
//! `globMatch` and `ipMatch` panic or loop on hostile input); no role chain or
//! region chain may be deeper than Casbin follows. A bad row is refused with its
//! file, line and text, never passed on.

use flagnet_core::{AgencyId, FieldClass, PolicyContent, Purpose, RoleName};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The words a policy row may use for an agency position besides ids and regions.
pub const ANY_AGENCY: &str = "any";
pub const SAME_AGENCY: &str = "same";
/// The operation object and purpose that govern records maintenance.
pub const FLAG_RECORDS_OBJECT: &str = "flag_records";
pub const RECORDS_MAINTENANCE: &str = "records_maintenance";
/// Casbin follows at most this many `g3` (or `g2`) links and silently stops
/// there; a deeper chain is refused rather than half-honoured.
pub const MAX_ROLE_CHAIN_DEPTH: usize = 9;

/// Casbin's matching functions. Identifiers are lower-case, so these
/// camel-case names can only be an attempt to call one.
const CASBIN_FUNCTIONS: [&str; 6] = ["regexMatch", "keyMatch", "keyGet", "globMatch", "ipMatch", "timeMatch"];
/// Characters that make a field a call or a pattern rather than an identifier.
const PATTERN_CHARACTERS: [char; 11] = ['(', ')', '*', '?', '[', ']', '{', '}', '^', '$', '|'];

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
    #[error("{origin}:{line}: {reason}")]
    BadTestRow {
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
        let content = self.read_content()?;
        RuleSet::parse_content(
            &content,
            &self.dir.join("policy.csv").display().to_string(),
            &self.dir.join("roles.csv").display().to_string(),
        )
    }

    /// The three files as they are, comments included: what a node seeds
    /// its first stored version from.
    pub fn read_content(&self) -> Result<PolicyContent, PolicyError> {
        Ok(PolicyContent {
            model: read_file(&self.dir.join("model.conf"))?,
            policy: read_file(&self.dir.join("policy.csv"))?,
            roles: read_file(&self.dir.join("roles.csv"))?,
        })
    }
}

impl RuleSet {
    /// Parses and checks a stored policy: its rows as a policy file's are
    /// (errors name `policy.csv` or `roles.csv` and the line), and its chains.
    pub fn from_content(content: &PolicyContent) -> Result<RuleSet, PolicyError> {
        Self::parse_content(content, "policy.csv", "roles.csv")
    }

    fn parse_content(content: &PolicyContent, policy_origin: &str, roles_origin: &str) -> Result<RuleSet, PolicyError> {
        let mut rules = parse_rules(policy_origin, &content.policy)?;
        rules.extend(parse_rules(roles_origin, &content.roles)?);
        check_chains(&rules)?;
        Ok(RuleSet {
            model: content.model.clone(),
            rules,
        })
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

pub(crate) fn parse_rule(line: &str) -> Result<Rule, String> {
    refuse_functions_and_patterns(line)?;
    if let Some(foreign) = line.chars().find(|c| !c.is_ascii()) {
        return Err(format!("rule `{line}`: identifiers must be ASCII, found {foreign:?}"));
    }
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

/// Refuses a row that calls a function or carries a pattern, naming what was found.
fn refuse_functions_and_patterns(line: &str) -> Result<(), String> {
    let call = line.find('(').map(|open| {
        let name_start = line[..open]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |at| at + 1);
        &line[name_start..=open]
    });
    let named_function = CASBIN_FUNCTIONS.iter().find(|name| line.contains(*name)).copied();
    if let Some(function) = call.or(named_function) {
        return Err(format!(
            "rule `{line}`: functions (eval, regexMatch, keyMatch, globMatch, ipMatch and the like) are not \
             allowed in a policy row; found `{function}`"
        ));
    }
    if let Some(pattern) = line.chars().find(|c| PATTERN_CHARACTERS.contains(c)) {
        return Err(format!(
            "rule `{line}`: `{pattern}` is not allowed in a policy row; rules name exact identifiers, \
             never patterns or wildcards"
        ));
    }
    Ok(())
}

impl Rule {
    /// The row as it would be written in a policy file.
    pub fn to_line(&self) -> String {
        let (kind, values) = self.casbin_row();
        format!("{kind}, {}", values.join(", "))
    }
}

impl RuleSet {
    /// Checks a rule set however it was made: each rule must read back as
    /// itself through the same checks a policy file passes, and no chain may
    /// be too deep. A `RuleSet` built in code gets no shortcut past validation.
    pub fn check(&self) -> Result<(), PolicyError> {
        for (index, rule) in self.rules.iter().enumerate() {
            let line = rule.to_line();
            let bad = |reason: String| PolicyError::BadRule {
                origin: "rule set".to_owned(),
                line: index + 1,
                reason,
            };
            let reparsed = parse_rule(&line).map_err(bad)?;
            if reparsed != *rule {
                return Err(bad(format!("rule `{line}` does not read back as itself")));
            }
        }
        check_chains(&self.rules)
    }
}

/// Refuses cycles, and chains deeper than Casbin follows, in role
/// inheritance (`g3`) and in region membership (`g2`).
fn check_chains(rules: &[Rule]) -> Result<(), PolicyError> {
    let inheritance: Vec<(&str, &str)> = rules
        .iter()
        .filter_map(|rule| match rule {
            Rule::RoleInheritance { role, parent } => Some((role.as_str(), parent.as_str())),
            _ => None,
        })
        .collect();
    check_chain_kind("g3", "role", &inheritance)?;
    let membership: Vec<(&str, &str)> = rules
        .iter()
        .filter_map(|rule| match rule {
            Rule::Region { agency, region } => Some((agency.as_str(), region.as_str())),
            _ => None,
        })
        .collect();
    check_chain_kind("g2", "region", &membership)
}

fn check_chain_kind(kind: &str, noun: &str, links: &[(&str, &str)]) -> Result<(), PolicyError> {
    fn depth<'a>(
        noun: &str,
        name: &'a str,
        links: &[(&'a str, &'a str)],
        seen: &mut Vec<&'a str>,
    ) -> Result<usize, String> {
        if seen.contains(&name) {
            return Err(format!("{noun} cycle through `{name}`"));
        }
        seen.push(name);
        let mut deepest = 0;
        for (child, parent) in links {
            if *child == name {
                deepest = deepest.max(1 + depth(noun, parent, links, seen)?);
            }
        }
        seen.pop();
        Ok(deepest)
    }
    for (child, parent) in links {
        let in_rule = |reason: String| PolicyError::BadRule {
            origin: "policy".into(),
            line: 0,
            reason: format!("rule `{kind}, {child}, {parent}`: {reason}"),
        };
        let chain = depth(noun, child, links, &mut Vec::new()).map_err(in_rule)?;
        if chain > MAX_ROLE_CHAIN_DEPTH {
            return Err(in_rule(format!(
                "{noun} chain from `{child}` is {chain} links deep; Casbin follows at most {MAX_ROLE_CHAIN_DEPTH}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(row: &str) -> String {
        let error = parse_rules("test.csv", row).unwrap_err().to_string();
        assert!(
            error.starts_with("test.csv:1: rule `"),
            "the error names the file, line and rule: {error}"
        );
        assert!(error.contains(row.trim()), "the error quotes the rule: {error}");
        error
    }

    fn assert_refused(cases: &[(&str, &str)]) {
        for (row, expected) in cases {
            let error = refusal(row);
            assert!(error.contains(expected), "{row}: expected `{expected}` in `{error}`");
        }
    }

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
        rules.check().unwrap();
    }

    #[test]
    fn skips_blank_lines_and_comments_and_numbers_lines_from_one() {
        let text = "# a comment\n\n  p, dispatcher, any, same, presence, emergency_response, allow\n\np, x, any, same, presence, emergency_response, maybe\n";
        let error = parse_rules("policy.csv", text).unwrap_err().to_string();
        assert!(error.starts_with("policy.csv:5: rule `p, x, any"), "{error}");
    }

    #[test]
    fn refuses_empty_identifiers() {
        assert_refused(&[
            (
                "p, , any, same, presence, emergency_response, allow",
                "must not be empty",
            ),
            (
                "p, dispatcher, , same, presence, emergency_response, allow",
                "must not be empty",
            ),
            (
                "p, dispatcher, any, , presence, emergency_response, allow",
                "must not be empty",
            ),
            ("g, , dispatcher, phelps-so", "must not be empty"),
            ("g2, phelps-so,  ", "must not be empty"),
            ("g3, cit_officer, ", "must not be empty"),
        ]);
    }

    #[test]
    fn refuses_non_ascii_identifiers() {
        assert_refused(&[
            (
                "p, dispätcher, any, same, presence, emergency_response, allow",
                "must be ASCII",
            ),
            ("g, ălice, dispatcher, phelps-so", "must be ASCII"),
            ("g2, phelps\u{200b}so, south-central-mo", "must be ASCII"),
            ("g2, phelps-so, south-central-mо", "must be ASCII"),
        ]);
    }

    #[test]
    fn refuses_identifiers_longer_than_64_bytes() {
        let long = "a".repeat(65);
        let just_fits = "a".repeat(64);
        assert_refused(&[
            (
                &format!("p, {long}, any, same, presence, emergency_response, allow"),
                "at most 64",
            ),
            (&format!("g2, {long}, south-central-mo"), "at most 64"),
            (&format!("g, {long}, dispatcher, phelps-so"), "at most 64"),
        ]);
        parse_rules("test.csv", &format!("g2, {just_fits}, south-central-mo")).unwrap();
    }

    #[test]
    fn refuses_the_reserved_default_domain_in_any_case() {
        assert_refused(&[
            ("p, DEFAULT, any, same, presence, emergency_response, allow", "reserved"),
            ("g, alice, dispatcher, DEFAULT", "reserved"),
            ("g, alice, dispatcher, default", "reserved"),
            ("g2, phelps-so, Default", "reserved"),
            ("g3, default, officer", "reserved"),
        ]);
    }

    #[test]
    fn refuses_the_position_words_where_an_agency_is_named() {
        assert_refused(&[
            ("g2, rolla-pd, any", "reserved"),
            ("g2, same, south-central-mo", "reserved"),
            ("g, alice, dispatcher, any", "reserved"),
            (
                "p, dispatcher, same, same, presence, emergency_response, allow",
                "owner position",
            ),
        ]);
    }

    #[test]
    fn refuses_functions_naming_the_rule() {
        assert_refused(&[
            ("p, dispatcher, any, same, presence, eval(1), allow", "found `eval(`"),
            (
                "p, dispatcher, any, same, regexMatch(r.field), emergency_response, allow",
                "found `regexMatch(`",
            ),
            (
                "p, dispatcher, keyMatch2, same, presence, emergency_response, allow",
                "found `keyMatch`",
            ),
            (
                "p, dispatcher, any, keyMatch(r.owner, p.owner), presence, emergency_response, allow",
                "found `keyMatch(`",
            ),
            (
                "p, dispatcher, any, same, globMatch, emergency_response, allow",
                "found `globMatch`",
            ),
            ("g2, ipMatch, south-central-mo", "found `ipMatch`"),
            ("g3, officer, keyGet2", "found `keyGet`"),
            (
                "p, dispatcher, any, same, presence, emergency_response, allow)",
                "not allowed",
            ),
            (
                "p, (dispatcher), any, same, presence, emergency_response, allow",
                "found `(`",
            ),
        ]);
    }

    #[test]
    fn refuses_patterns_and_wildcards() {
        assert_refused(&[
            (
                "p, dispatcher, *, same, presence, emergency_response, allow",
                "`*` is not allowed",
            ),
            (
                "p, dispatcher, any, same, pres?nce, emergency_response, allow",
                "`?` is not allowed",
            ),
            ("g2, phelps-so, south-[a-z]*", "`[` is not allowed"),
            (
                "p, dispatcher, ^rolla.*$, same, presence, emergency_response, allow",
                "`^` is not allowed",
            ),
            (
                "p, dispatcher, any, same, presence|clinical, emergency_response, allow",
                "`|` is not allowed",
            ),
            (
                "p, dispatcher, any, {owner}, presence, emergency_response, allow",
                "`{` is not allowed",
            ),
        ]);
    }

    #[test]
    fn refuses_effects_other_than_exactly_allow_or_deny() {
        for effect in [
            "Deny",
            "ALLOW",
            "Allow",
            "permit",
            "allowed",
            "\"allow\"",
            "deny!",
            "1",
            "eft",
        ] {
            let row = format!("p, dispatcher, any, same, presence, emergency_response, {effect}");
            let error = refusal(&row);
            assert!(error.contains("exactly `allow` or `deny`"), "{row}: {error}");
        }
        let rules = parse_rules(
            "t",
            "p, dispatcher, any, same, presence, emergency_response, allow\np, dispatcher, any, same, clinical, emergency_response, deny",
        )
        .unwrap();
        assert!(matches!(rules[0], Rule::Permission { allow: true, .. }));
        assert!(matches!(rules[1], Rule::Permission { allow: false, .. }));
    }

    #[test]
    fn refuses_wrong_field_counts_for_every_rule_type() {
        assert_refused(&[
            (
                "p, dispatcher, any, same, presence, emergency_response",
                "has 7 fields, found 6",
            ),
            (
                "p, dispatcher, any, same, presence, emergency_response, allow, extra",
                "has 7 fields, found 8",
            ),
            (
                "p, dispatcher, any, same, presence, emergency_response, allow,",
                "has 7 fields, found 8",
            ),
            ("g, alice, dispatcher", "has 4 fields, found 3"),
            ("g, alice, dispatcher, phelps-so, extra", "has 4 fields, found 5"),
            ("g2, phelps-so", "has 3 fields, found 2"),
            ("g2, phelps-so, south-central-mo, mid-mo", "has 3 fields, found 4"),
            ("g3, cit_officer", "has 3 fields, found 2"),
            ("g3, cit_officer, officer, dispatcher", "has 3 fields, found 4"),
        ]);
    }

    #[test]
    fn refuses_unknown_rule_types_field_classes_and_purposes() {
        assert_refused(&[
            ("g4, a, b", "unknown rule type"),
            (
                "P, dispatcher, any, same, presence, emergency_response, allow",
                "unknown rule type",
            ),
            (
                "p, dispatcher, any, same, diagnosis, emergency_response, allow",
                "field class",
            ),
            (
                "p, dispatcher, any, same, presence, curiosity, allow",
                "unknown purpose",
            ),
            (
                "p, dispatcher, any, same, flag_records, emergency_response, allow",
                "field class",
            ),
            (
                "p, dispatcher, any, same, presence, records_maintenance, allow",
                "unknown purpose",
            ),
        ]);
    }

    #[test]
    fn refuses_deep_and_cyclic_role_chains_naming_the_rule() {
        let chain = |links: usize| -> String { (0..links).map(|i| format!("g3, r{i}, r{}\n", i + 1)).collect() };
        let too_deep = check_chains(&parse_rules("t", &chain(10)).unwrap())
            .unwrap_err()
            .to_string();
        assert!(too_deep.contains("rule `g3, r0, r1`"), "{too_deep}");
        assert!(too_deep.contains("10 links deep"), "{too_deep}");
        check_chains(&parse_rules("t", &chain(MAX_ROLE_CHAIN_DEPTH)).unwrap()).unwrap();
        let cycle = check_chains(&parse_rules("t", "g3, a, b\ng3, b, a").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            cycle.contains("role cycle") && cycle.contains("rule `g3, a, b`"),
            "{cycle}"
        );
        let self_loop = check_chains(&parse_rules("t", "g3, a, a").unwrap())
            .unwrap_err()
            .to_string();
        assert!(self_loop.contains("cycle"), "{self_loop}");
    }

    #[test]
    fn refuses_deep_and_cyclic_region_chains() {
        let chain: String = (0..10).map(|i| format!("g2, a{i}, a{}\n", i + 1)).collect();
        let error = check_chains(&parse_rules("t", &chain).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("region chain") && error.contains("rule `g2, a0, a1`"),
            "{error}"
        );
        let nine: String = (0..9).map(|i| format!("g2, a{i}, a{}\n", i + 1)).collect();
        check_chains(&parse_rules("t", &nine).unwrap()).unwrap();
        let cycle = check_chains(&parse_rules("t", "g2, x, y\ng2, y, x").unwrap())
            .unwrap_err()
            .to_string();
        assert!(cycle.contains("region cycle"), "{cycle}");
    }

    #[test]
    fn the_source_refuses_a_deep_chain_in_its_files() {
        let dir = std::env::temp_dir().join(format!("flagnet-policy-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
        std::fs::copy(format!("{default}/model.conf"), dir.join("model.conf")).unwrap();
        let chain: String = (0..10).map(|i| format!("g3, r{i}, r{}\n", i + 1)).collect();
        std::fs::write(dir.join("policy.csv"), chain).unwrap();
        std::fs::write(dir.join("roles.csv"), "").unwrap();
        let error = PolicySource::new(&dir).read().unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).ok();
        assert!(error.contains("deep"), "{error}");
    }

    #[test]
    fn a_rule_set_built_in_code_is_checked_too() {
        let hostile = RuleSet {
            model: String::new(),
            rules: vec![Rule::Permission {
                role: "dispatcher".into(),
                actor: "any".into(),
                owner: "same".into(),
                object: "presence".into(),
                purpose: "emergency_response".into(),
                allow: true,
            }],
        };
        hostile.check().unwrap();
        for rule in [
            Rule::RoleAssignment {
                user: "alice".into(),
                role: "dispatcher".into(),
                agency: "phelps-so, extra".into(),
            },
            Rule::Region {
                agency: "é".into(),
                region: "south-central-mo".into(),
            },
            Rule::RoleInheritance {
                role: "keyMatch(r.role)".into(),
                parent: "officer".into(),
            },
            Rule::Permission {
                role: "DEFAULT".into(),
                actor: "any".into(),
                owner: "same".into(),
                object: "presence".into(),
                purpose: "emergency_response".into(),
                allow: true,
            },
        ] {
            let set = RuleSet {
                model: String::new(),
                rules: vec![rule.clone()],
            };
            assert!(set.check().is_err(), "{rule:?} should be refused");
        }
    }
}
