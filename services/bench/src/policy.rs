//! The policies the benchmark's nodes run: the repository's default policy,
//! plus the benchmark's fourth agency (`dent-so`) in the region
//! `south-central-mo`, grown with synthetic rules to an exact rule count
//! (as `PolicySource` counts them: every `p`, `g`, `g2` and `g3` line of
//! `policy.csv` and `roles.csv`).
//!
//! Synthetic rules never change a decision about a real agency or person:
//! they grant real roles only at synthetic agencies (which no certificate
//! names), or grant synthetic roles (which nobody holds), so a node with
//! 10,000 rules answers exactly as one with 100 and only the size differs.

use crate::BenchError;
use flagnet_policy::PolicySource;
use std::collections::HashSet;
use std::fmt::Write;
use std::path::Path;

const MODEL_CONF: &str = include_str!("../../../policies/model.conf");
const POLICY_CSV: &str = include_str!("../../../policies/policy.csv");
const ROLES_CSV: &str = include_str!("../../../policies/roles.csv");

/// The benchmark's fourth agency, a neighbour of the demo's three.
pub const FOURTH_AGENCY: &str = "dent-so";

const REAL_ROLES: [&str; 4] = ["dispatcher", "officer", "cit_officer", "liaison"];
const CLASSES: [&str; 6] = ["presence", "response", "safety", "contacts", "clinical", "identity"];
const PURPOSES: [&str; 4] = [
    "emergency_response",
    "welfare_check",
    "crisis_followup",
    "emergency_override",
];

/// Writes `model.conf`, `policy.csv` and `roles.csv` with exactly
/// `total_rules` rules into `dir`; returns the rule count read back.
pub fn write_policy(dir: &Path, total_rules: usize) -> Result<usize, BenchError> {
    std::fs::create_dir_all(dir).map_err(|error| BenchError::setup("policy dir", error))?;
    let base = format!("{POLICY_CSV}\n# the benchmark's fourth agency\ng2, {FOURTH_AGENCY}, south-central-mo\n");
    let write = |policy: &str| -> Result<usize, BenchError> {
        for (name, text) in [
            ("model.conf", MODEL_CONF),
            ("policy.csv", policy),
            ("roles.csv", ROLES_CSV),
        ] {
            std::fs::write(dir.join(name), text).map_err(|error| BenchError::setup("policy file", error))?;
        }
        let rules = PolicySource::new(dir)
            .read()
            .map_err(|error| BenchError::setup("policy", error))?;
        Ok(rules.rules.len())
    };
    let base_rules = write(&base)?;
    if total_rules < base_rules {
        return Err(BenchError::setup(
            "policy",
            format!("the default policy already has {base_rules} rules; ask for at least that many"),
        ));
    }
    let grown = format!(
        "{base}\n# {} synthetic rules (flagnet-bench)\n{}",
        total_rules - base_rules,
        synthetic_rules(total_rules - base_rules)
    );
    let rules = write(&grown)?;
    if rules != total_rules {
        return Err(BenchError::setup(
            "policy",
            format!("wrote {rules} rules, wanted {total_rules}"),
        ));
    }
    Ok(rules)
}

/// `count` distinct rule lines about synthetic agencies and roles.
pub fn synthetic_rules(count: usize) -> String {
    let agencies = (count / 20).max(2);
    let regions = (agencies / 10).max(1);
    let roles = (count / 100).max(2);
    let mut seen = HashSet::with_capacity(count);
    let mut text = String::with_capacity(count * 64);
    let mut push = |line: String, text: &mut String| -> bool {
        if seen.len() < count && seen.insert(line.clone()) {
            let _ = writeln!(text, "{line}");
        }
        seen.len() < count
    };
    for agency in 0..agencies {
        if !push(
            format!("g2, bench-a{agency}, bench-region{}", agency % regions),
            &mut text,
        ) {
            return text;
        }
    }
    let mut state: u64 = 0x5eed_f1a9;
    let mut next = |bound: usize| -> usize {
        state = crate::load::mix(state);
        (state % bound as u64) as usize
    };
    loop {
        let class = CLASSES[next(CLASSES.len())];
        let purpose = PURPOSES[next(PURPOSES.len())];
        let effect = if next(8) == 0 { "deny" } else { "allow" };
        let line = if next(2) == 0 {
            // a real role, but only for synthetic agencies and regions
            let actor = if next(3) == 0 {
                format!("bench-region{}", next(regions))
            } else {
                format!("bench-a{}", next(agencies))
            };
            let owner = [
                "same".to_owned(),
                "any".to_owned(),
                format!("bench-a{}", next(agencies)),
            ][next(3)]
            .clone();
            format!(
                "p, {}, {actor}, {owner}, {class}, {purpose}, {effect}",
                REAL_ROLES[next(REAL_ROLES.len())]
            )
        } else {
            // a role nobody holds, anywhere
            let actor = ["any", "phelps-so", "south-central-mo"][next(3)];
            let owner = ["same", "any", "phelps-so", "south-central-mo"][next(4)];
            format!(
                "p, bench-role{}, {actor}, {owner}, {class}, {purpose}, {effect}",
                next(roles)
            )
        };
        if !push(line, &mut text) {
            return text;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_has_exactly_the_rules_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(write_policy(dir.path(), 100).unwrap(), 100);
        assert_eq!(write_policy(dir.path(), 3_000).unwrap(), 3_000);
        assert!(write_policy(dir.path(), 10).is_err());
    }

    #[test]
    fn synthetic_rules_are_distinct() {
        let text = synthetic_rules(5_000);
        let lines: HashSet<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5_000);
    }
}
