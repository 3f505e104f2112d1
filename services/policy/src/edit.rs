//! Policy edits as a privacy officer writes them: rows to add and rows to
//! remove, or a whole `policy.csv` (and optionally `roles.csv` and the
//! model), applied to the text of the current version to make the text of
//! the next one. Comments and the order of the rows that stay are kept, so
//! the stored policy reads like the reviewable `policies/` files it started
//! from; an added row goes at the end of `roles.csv` when it is a role
//! assignment (`g`) and of `policy.csv` otherwise.
//!
//! Every row given is checked exactly as a policy file's row is (no function,
//! pattern or wildcard, checked identifiers, a known field class and
//! purpose) before anything else looks at it; this module never hands on a
//! row it could not read. Whether the whole result is a valid policy is for
//! [`crate::PolicySnapshot::build`] to say.

use crate::rules::{Rule, parse_rule};
use flagnet_core::PolicyContent;

/// The most rows one edit may add or remove.
pub const MAX_EDIT_ROWS: usize = 10_000;

/// What a privacy officer asks to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyEdit {
    /// rows to add and rows to remove, each one rule in policy-file syntax
    Rows { add: Vec<String>, remove: Vec<String> },
    /// a whole `policy.csv`; `roles` and `model` replace theirs when given
    Whole {
        policy: String,
        roles: Option<String>,
        model: Option<String>,
    },
}

/// Applies `edit` to `current`: the text of the next version, or every
/// problem found, each naming the entry it is about (`change.add[2]`).
pub fn apply_edit(current: &PolicyContent, edit: &PolicyEdit) -> Result<PolicyContent, Vec<String>> {
    match edit {
        PolicyEdit::Whole { policy, roles, model } => Ok(PolicyContent {
            model: model.clone().unwrap_or_else(|| current.model.clone()),
            policy: policy.clone(),
            roles: roles.clone().unwrap_or_else(|| current.roles.clone()),
        }),
        PolicyEdit::Rows { add, remove } => apply_rows(current, add, remove),
    }
}

/// One entry of an edit read as a single rule.
fn entry_rule(field: &str, text: &str) -> Result<Rule, String> {
    let line = text.trim();
    if line.is_empty() {
        return Err(format!(
            "{field}: is empty; give one rule such as `p, role, actor, owner, field, purpose, allow`"
        ));
    }
    if line.contains(['\n', '\r']) {
        return Err(format!("{field}: give one rule per entry"));
    }
    if line.starts_with('#') {
        return Err(format!("{field}: `{line}` is a comment, not a rule"));
    }
    parse_rule(line).map_err(|reason| format!("{field}: {reason}"))
}

/// The rule a line of a stored file holds, if it holds one.
fn line_rule(line: &str) -> Option<Rule> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    parse_rule(line).ok()
}

fn apply_rows(current: &PolicyContent, add: &[String], remove: &[String]) -> Result<PolicyContent, Vec<String>> {
    let mut problems = Vec::new();
    if add.is_empty() && remove.is_empty() {
        problems.push("change: add or remove at least one rule, or give a whole policy".to_owned());
    }
    if add.len() > MAX_EDIT_ROWS || remove.len() > MAX_EDIT_ROWS {
        problems.push(format!(
            "change: at most {MAX_EDIT_ROWS} rules may be added and {MAX_EDIT_ROWS} removed at once"
        ));
        return Err(problems);
    }
    let mut removals: Vec<Rule> = Vec::new();
    for (index, text) in remove.iter().enumerate() {
        match entry_rule(&format!("change.remove[{index}]"), text) {
            Ok(rule) if removals.contains(&rule) => {
                problems.push(format!(
                    "change.remove[{index}]: rule `{}` is listed twice",
                    rule.to_line()
                ));
            }
            Ok(rule) => removals.push(rule),
            Err(problem) => problems.push(problem),
        }
    }
    let mut additions: Vec<(usize, Rule)> = Vec::new();
    for (index, text) in add.iter().enumerate() {
        match entry_rule(&format!("change.add[{index}]"), text) {
            Ok(rule) if additions.iter().any(|(_, added)| *added == rule) => {
                problems.push(format!(
                    "change.add[{index}]: rule `{}` is listed twice",
                    rule.to_line()
                ));
            }
            Ok(rule) if removals.contains(&rule) => {
                problems.push(format!(
                    "change.add[{index}]: rule `{}` is both added and removed",
                    rule.to_line()
                ));
            }
            Ok(rule) => additions.push((index, rule)),
            Err(problem) => problems.push(problem),
        }
    }
    let present: Vec<Rule> = current
        .policy
        .lines()
        .chain(current.roles.lines())
        .filter_map(line_rule)
        .collect();
    for (index, text) in remove.iter().enumerate() {
        if let Ok(rule) = entry_rule("", text)
            && !present.contains(&rule)
        {
            problems.push(format!(
                "change.remove[{index}]: rule `{}` is not in the policy",
                rule.to_line()
            ));
        }
    }
    for (index, rule) in &additions {
        if present.contains(rule) {
            problems.push(format!(
                "change.add[{index}]: rule `{}` is already in the policy",
                rule.to_line()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let keep = |text: &str| -> String {
        text.lines()
            .filter(|line| line_rule(line).is_none_or(|rule| !removals.contains(&rule)))
            .map(|line| format!("{line}\n"))
            .collect()
    };
    let mut policy = keep(&current.policy);
    let mut roles = keep(&current.roles);
    for (_, rule) in additions {
        let target = match rule {
            Rule::RoleAssignment { .. } => &mut roles,
            _ => &mut policy,
        };
        target.push_str(&rule.to_line());
        target.push('\n');
    }
    Ok(PolicyContent {
        model: current.model.clone(),
        policy,
        roles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> PolicyContent {
        PolicyContent {
            model: "model".into(),
            policy: "# own agency\np, dispatcher, any, same, presence, emergency_response, allow\n\n# regions\ng2, phelps-so, south-central-mo\n".into(),
            roles: "# people\ng, dispatcher1, dispatcher, phelps-so\n".into(),
        }
    }

    fn rows(add: &[&str], remove: &[&str]) -> PolicyEdit {
        PolicyEdit::Rows {
            add: add.iter().map(|row| (*row).to_owned()).collect(),
            remove: remove.iter().map(|row| (*row).to_owned()).collect(),
        }
    }

    #[test]
    fn additions_go_to_their_file_and_removals_keep_comments_and_order() {
        let edited = apply_edit(
            &current(),
            &rows(
                &[
                    "g, dispatcher2, dispatcher, phelps-so",
                    "p,dispatcher,any,same,response,emergency_response,allow",
                ],
                &["  p, dispatcher, any, same, presence, emergency_response, allow"],
            ),
        )
        .unwrap();
        assert_eq!(
            edited.policy,
            "# own agency\n\n# regions\ng2, phelps-so, south-central-mo\np, dispatcher, any, same, response, emergency_response, allow\n"
        );
        assert_eq!(
            edited.roles,
            "# people\ng, dispatcher1, dispatcher, phelps-so\ng, dispatcher2, dispatcher, phelps-so\n"
        );
        assert_eq!(edited.model, "model");
    }

    #[test]
    fn every_problem_is_named_with_its_entry() {
        let problems = apply_edit(
            &current(),
            &rows(
                &[
                    "p, dispatcher, any, same, presence, emergency_response, allow",
                    "p, dispatcher, any, same, presence, eval(1), allow",
                    "",
                    "p, officer, any, same, safety, welfare_check, allow\np, x, any, same, safety, welfare_check, allow",
                    "g2, rolla-pd, south-central-mo",
                    "g2, rolla-pd, south-central-mo",
                ],
                &["g3, cit_officer, officer", "# a comment"],
            ),
        )
        .unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "change.add[0]: rule `p, dispatcher, any, same, presence, emergency_response, allow` is already in the policy",
            "change.add[1]: rule `p, dispatcher, any, same, presence, eval(1), allow`: functions",
            "change.add[2]: is empty",
            "change.add[3]: give one rule per entry",
            "change.add[5]: rule `g2, rolla-pd, south-central-mo` is listed twice",
            "change.remove[0]: rule `g3, cit_officer, officer` is not in the policy",
            "change.remove[1]: `# a comment` is a comment",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
        let nothing = apply_edit(&current(), &rows(&[], &[])).unwrap_err();
        assert!(nothing[0].contains("at least one rule"), "{nothing:?}");
        let both = apply_edit(
            &current(),
            &rows(&["g2, rolla-pd, south-central-mo"], &["g2, rolla-pd, south-central-mo"]),
        )
        .unwrap_err();
        assert!(
            both.iter().any(|problem| problem.contains("both added and removed")),
            "{both:?}"
        );
    }

    #[test]
    fn a_whole_policy_replaces_what_it_names() {
        let edited = apply_edit(
            &current(),
            &PolicyEdit::Whole {
                policy: "g2, rolla-pd, south-central-mo\n".into(),
                roles: None,
                model: None,
            },
        )
        .unwrap();
        assert_eq!(edited.policy, "g2, rolla-pd, south-central-mo\n");
        assert_eq!(edited.roles, current().roles);
        let with_roles = apply_edit(
            &current(),
            &PolicyEdit::Whole {
                policy: String::new(),
                roles: Some(String::new()),
                model: Some("other".into()),
            },
        )
        .unwrap();
        assert_eq!((with_roles.roles.as_str(), with_roles.model.as_str()), ("", "other"));
    }
}
