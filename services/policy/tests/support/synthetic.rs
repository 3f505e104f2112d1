//! Synthetic policy rules for other agencies and roles, to grow a policy to a
//! given size without changing any decision about the real agencies
//! (phelps-so, rolla-pd, pulaski-so, boone-so) and roles: synthetic rules
//! either give real roles grants at synthetic agencies and regions only, or
//! give synthetic roles (which no real person holds) grants anywhere. Used by
//! the scale tests and by `benches/decision.rs`.

use flagnet_policy::{PolicySource, RuleSet, parse_rules};
use std::collections::HashSet;
use std::path::Path;

const REAL_ROLES: [&str; 7] = [
    "dispatcher",
    "officer",
    "cit_officer",
    "liaison",
    "records_clerk",
    "privacy_officer",
    "auditor",
];
const CLASSES: [&str; 6] = ["presence", "response", "safety", "contacts", "clinical", "identity"];
const PURPOSES: [&str; 4] = [
    "emergency_response",
    "welfare_check",
    "crisis_followup",
    "emergency_override",
];

/// The default policy in `policy_dir`, grown with synthetic rules to exactly
/// `total` rules (or left as it is, if it already has that many).
pub fn grown_policy(policy_dir: &Path, total: usize) -> RuleSet {
    let mut rules = PolicySource::new(policy_dir).read().expect("default policy reads");
    let wanted = total.saturating_sub(rules.rules.len());
    let text = synthetic_rules(wanted);
    rules
        .rules
        .extend(parse_rules("synthetic", &text).expect("synthetic rules are valid"));
    rules
}

/// `count` distinct synthetic rule lines: region memberships for synthetic
/// agencies, a little synthetic role inheritance, and allow and deny rules.
pub fn synthetic_rules(count: usize) -> String {
    let agencies = (count / 40).max(4);
    let regions = (agencies / 10).max(2);
    let synthetic_roles = (count / 200).max(2);
    let mut lines: Vec<String> = Vec::with_capacity(count);
    let mut seen: HashSet<String> = HashSet::with_capacity(count);
    let mut push = |line: String, lines: &mut Vec<String>| {
        if lines.len() < count && seen.insert(line.clone()) {
            lines.push(line);
        }
    };
    for agency in 0..agencies {
        push(
            format!("g2, synth-a{agency}, synth-region{}", agency % regions),
            &mut lines,
        );
    }
    for role in 1..synthetic_roles {
        if role % 3 != 0 {
            push(format!("g3, synth-role{role}, synth-role{}", role - 1), &mut lines);
        }
    }
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |bound: usize| -> usize {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    while lines.len() < count {
        let synthetic_agency = format!("synth-a{}", next(agencies));
        let synthetic_region = format!("synth-region{}", next(regions));
        let (role, actor) = if next(2) == 0 {
            let actor = if next(3) == 0 {
                synthetic_region
            } else {
                synthetic_agency.clone()
            };
            (REAL_ROLES[next(REAL_ROLES.len())].to_owned(), actor)
        } else {
            let actor = ["any", "rolla-pd", "south-central-mo", &synthetic_agency][next(4)].to_owned();
            (format!("synth-role{}", next(synthetic_roles)), actor)
        };
        let owner = ["same", "any", "phelps-so", &synthetic_agency][next(4)].to_owned();
        let effect = if next(8) == 0 { "deny" } else { "allow" };
        let line = format!(
            "p, {role}, {actor}, {owner}, {}, {}, {effect}",
            CLASSES[next(CLASSES.len())],
            PURPOSES[next(PURPOSES.len())]
        );
        push(line, &mut lines);
    }
    lines.join("\n")
}
