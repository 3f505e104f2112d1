//! What a policy change does: every decision that flips between two
//! snapshots, and the rules that differ. A decision is one role at one
//! asking agency, about a flag of one owner agency, for one purpose and one
//! field class (or keeping the owner's records); it flips when one snapshot
//! allows it and the other does not.
//!
//! Both snapshots decide through their decision tables, the path every
//! request takes, over every role and agency either policy names (plus the
//! agencies the caller adds: the node's own and its peers) × every purpose
//! × every field class, and records maintenance. Regions are not asked
//! about: they never make a request or own a flag. A space larger than
//! [`MAX_IMPACT_TUPLES`] is narrowed to the names the changed rules touch,
//! and the impact then says it is not complete.

use crate::policy_tests::TestedRequest;
use crate::rules::{ANY_AGENCY, Rule, RuleSet, SAME_AGENCY};
use crate::snapshot::PolicySnapshot;
use flagnet_core::{AgencyId, FieldClass, Purpose, RoleName};
use std::collections::BTreeSet;
use std::fmt;

/// The most (role, actor, owner) tuples compared in full.
pub const MAX_IMPACT_TUPLES: usize = 1_000_000;

/// One decision that differs between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionFlip {
    pub role: RoleName,
    pub actor: AgencyId,
    pub owner: AgencyId,
    pub request: TestedRequest,
    /// whether the new snapshot allows it (the old one then did not)
    pub allowed_after: bool,
}

impl fmt::Display for DecisionFlip {
    /// As a privacy officer reads it: "rolla-pd dispatcher gains `safety` on
    /// phelps-so flags for emergency_response".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let change = if self.allowed_after { "gains" } else { "loses" };
        match self.request {
            TestedRequest::Disclose { class, purpose } => write!(
                f,
                "{} {} {change} `{class}` on {} flags for {purpose}",
                self.actor, self.role, self.owner
            ),
            TestedRequest::MaintainRecords => write!(
                f,
                "{} {} {change} keeping {} flags and consents",
                self.actor, self.role, self.owner
            ),
        }
    }
}

/// Every decision that flips, in a stable order (asking agency, role,
/// owner, purpose, field class).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecisionImpact {
    pub flips: Vec<DecisionFlip>,
    /// decisions compared
    pub compared: usize,
    /// false when the space was too large and only the names the changed
    /// rules touch were compared
    pub complete: bool,
}

impl DecisionImpact {
    pub fn gained(&self) -> usize {
        self.flips.iter().filter(|flip| flip.allowed_after).count()
    }

    pub fn lost(&self) -> usize {
        self.flips.len() - self.gained()
    }

    /// `+3/-1 decisions`, for audit records and history.
    pub fn summary(&self) -> String {
        let partial = if self.complete { "" } else { ", partial" };
        format!("+{}/-{} decisions{partial}", self.gained(), self.lost())
    }
}

/// The rules one policy has and the other has not, each in the order its
/// policy lists it, and whether the model differs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleDiff {
    pub added: Vec<Rule>,
    pub removed: Vec<Rule>,
    pub model_changed: bool,
}

impl RuleDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && !self.model_changed
    }

    /// Role assignments (`g`) added and removed: who gains or loses a role.
    pub fn role_assignments(&self) -> (Vec<&Rule>, Vec<&Rule>) {
        let assignment = |rule: &&Rule| matches!(rule, Rule::RoleAssignment { .. });
        (
            self.added.iter().filter(assignment).collect(),
            self.removed.iter().filter(assignment).collect(),
        )
    }
}

/// The rules of `after` not in `before` and the other way round.
pub fn rule_diff(before: &RuleSet, after: &RuleSet) -> RuleDiff {
    let old: BTreeSet<String> = before.rules.iter().map(Rule::to_line).collect();
    let new: BTreeSet<String> = after.rules.iter().map(Rule::to_line).collect();
    let mut seen = BTreeSet::new();
    let added = after
        .rules
        .iter()
        .filter(|rule| !old.contains(&rule.to_line()) && seen.insert(rule.to_line()))
        .cloned()
        .collect();
    let removed = before
        .rules
        .iter()
        .filter(|rule| !new.contains(&rule.to_line()) && seen.insert(rule.to_line()))
        .cloned()
        .collect();
    RuleDiff {
        added,
        removed,
        model_changed: before.model != after.model,
    }
}

/// Every decision that differs between `before` and `after`, over every
/// role and agency either names and `extra_agencies`.
pub fn decision_impact(before: &PolicySnapshot, after: &PolicySnapshot, extra_agencies: &[AgencyId]) -> DecisionImpact {
    let old = before.names();
    let new = after.names();
    let regions: BTreeSet<String> = old.regions.union(&new.regions).cloned().collect();
    let mut roles: BTreeSet<String> = old.roles.union(&new.roles).cloned().collect();
    let mut agencies: BTreeSet<String> = old
        .agencies
        .union(&new.agencies)
        .filter(|name| !regions.contains(*name))
        .cloned()
        .chain(extra_agencies.iter().map(ToString::to_string))
        .collect();
    let mut complete = true;
    if roles
        .len()
        .saturating_mul(agencies.len())
        .saturating_mul(agencies.len())
        > MAX_IMPACT_TUPLES
    {
        complete = false;
        (roles, agencies) = touched_names(before, after, extra_agencies, &roles, &agencies);
    }
    let roles: Vec<RoleName> = roles.iter().filter_map(|role| RoleName::parse(role).ok()).collect();
    let agencies: Vec<AgencyId> = agencies
        .iter()
        .filter(|agency| agency.as_str() != ANY_AGENCY && agency.as_str() != SAME_AGENCY)
        .filter_map(|agency| AgencyId::parse(agency).ok())
        .collect();
    let mut impact = DecisionImpact {
        flips: Vec::new(),
        compared: 0,
        complete,
    };
    for actor in &agencies {
        for role in &roles {
            let single = std::slice::from_ref(role);
            for owner in &agencies {
                for purpose in Purpose::ALL {
                    let was = before.allowed_classes(single, actor, owner, purpose);
                    let now = after.allowed_classes(single, actor, owner, purpose);
                    impact.compared += FieldClass::ALL.len();
                    for class in FieldClass::ALL {
                        if was.contains(class) != now.contains(class) {
                            impact.flips.push(DecisionFlip {
                                role: role.clone(),
                                actor: actor.clone(),
                                owner: owner.clone(),
                                request: TestedRequest::Disclose { class, purpose },
                                allowed_after: now.contains(class),
                            });
                        }
                    }
                }
                let was = before.may_maintain_records(single, actor, owner);
                let now = after.may_maintain_records(single, actor, owner);
                impact.compared += 1;
                if was != now {
                    impact.flips.push(DecisionFlip {
                        role: role.clone(),
                        actor: actor.clone(),
                        owner: owner.clone(),
                        request: TestedRequest::MaintainRecords,
                        allowed_after: now,
                    });
                }
            }
        }
    }
    impact
}

/// The roles and agencies a change can affect: those its changed rules
/// name, the roles that inherit from a named role, the members of a named
/// region, and `extra_agencies`.
fn touched_names(
    before: &PolicySnapshot,
    after: &PolicySnapshot,
    extra_agencies: &[AgencyId],
    all_roles: &BTreeSet<String>,
    all_agencies: &BTreeSet<String>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let diff = rule_diff(before.rules(), after.rules());
    let mut named = BTreeSet::new();
    for rule in diff.added.iter().chain(&diff.removed) {
        let (_, values) = rule.casbin_row();
        named.extend(values);
    }
    let snapshots = [before, after];
    let roles = all_roles
        .iter()
        .filter(|role| {
            RoleName::parse(role).is_ok_and(|held| {
                named.iter().any(|name| {
                    RoleName::parse(name)
                        .is_ok_and(|wanted| snapshots.iter().any(|snapshot| snapshot.role_includes(&held, &wanted)))
                })
            })
        })
        .cloned()
        .collect();
    let agencies = all_agencies
        .iter()
        .filter(|agency| {
            AgencyId::parse(agency).is_ok_and(|member| {
                named.iter().any(|name| {
                    AgencyId::parse(name)
                        .is_ok_and(|group| snapshots.iter().any(|snapshot| snapshot.agency_is_in(&member, &group)))
                })
            })
        })
        .cloned()
        .chain(extra_agencies.iter().map(ToString::to_string))
        .collect();
    (roles, agencies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse_rules;

    const MODEL: &str = include_str!("../../../policies/model.conf");

    async fn snapshot(text: &str) -> PolicySnapshot {
        let rules = RuleSet {
            model: MODEL.to_owned(),
            rules: parse_rules("impact", text).unwrap(),
        };
        PolicySnapshot::build(rules, &[]).await.unwrap()
    }

    const BASE: &str = "
g2, phelps-so, south-central-mo
g2, rolla-pd, south-central-mo
p, dispatcher, south-central-mo, south-central-mo, presence, emergency_response, allow
";

    #[tokio::test]
    async fn a_granted_class_is_one_flip_per_asking_agency_and_owner() {
        let before = snapshot(BASE).await;
        let after = snapshot(&format!(
            "{BASE}p, dispatcher, rolla-pd, phelps-so, safety, emergency_response, allow\n"
        ))
        .await;
        let impact = decision_impact(&before, &after, &[]);
        assert!(impact.complete);
        assert_eq!(impact.flips.len(), 1, "{:?}", impact.flips);
        assert_eq!(
            impact.flips[0].to_string(),
            "rolla-pd dispatcher gains `safety` on phelps-so flags for emergency_response"
        );
        assert_eq!(impact.summary(), "+1/-0 decisions");
        // 1 role, 2 agencies: 4 tuples of 4 purposes x 6 classes + records
        assert_eq!(impact.compared, 4 * 25);
        let back = decision_impact(&after, &before, &[]);
        assert_eq!(back.summary(), "+0/-1 decisions");
        assert!(!back.flips[0].allowed_after);
    }

    #[tokio::test]
    async fn region_membership_inheritance_and_extra_agencies_count() {
        let before = snapshot(BASE).await;
        let after = snapshot(&format!(
            "{BASE}g2, pulaski-so, south-central-mo\ng3, cit_officer, dispatcher\n"
        ))
        .await;
        let impact = decision_impact(&before, &after, &[AgencyId::parse("boone-so").unwrap()]);
        let lines: Vec<String> = impact.flips.iter().map(ToString::to_string).collect();
        // pulaski-so joins: it asks about all three and is asked about by all three
        assert!(
            lines.contains(
                &"pulaski-so dispatcher gains `presence` on phelps-so flags for emergency_response".to_owned()
            )
        );
        assert!(
            lines.contains(
                &"rolla-pd dispatcher gains `presence` on pulaski-so flags for emergency_response".to_owned()
            )
        );
        assert!(lines.contains(
            &"pulaski-so cit_officer gains `presence` on pulaski-so flags for emergency_response".to_owned()
        ));
        assert!(!lines.iter().any(|line| line.contains("boone-so")), "{lines:?}");
        // (dispatcher, cit_officer) x 3 agencies x 3 owners, minus dispatcher's 4 unchanged pairs
        assert_eq!(impact.gained(), 9 + 5);
        assert_eq!(impact.lost(), 0);
    }

    #[tokio::test]
    async fn the_rule_diff_names_added_and_removed_rules_and_assignments() {
        let before = snapshot(&format!("{BASE}g, dispatcher1, dispatcher, phelps-so\n")).await;
        let after = snapshot(&format!("{BASE}g, dispatcher2, dispatcher, phelps-so\n")).await;
        let diff = rule_diff(before.rules(), after.rules());
        assert_eq!(
            diff.added.iter().map(Rule::to_line).collect::<Vec<_>>(),
            ["g, dispatcher2, dispatcher, phelps-so"]
        );
        assert_eq!(
            diff.removed.iter().map(Rule::to_line).collect::<Vec<_>>(),
            ["g, dispatcher1, dispatcher, phelps-so"]
        );
        assert!(!diff.model_changed);
        assert_eq!(diff.role_assignments().0.len(), 1);
        let impact = decision_impact(&before, &after, &[]);
        assert!(impact.flips.is_empty(), "role assignments flip no role decision");
        assert!(rule_diff(before.rules(), before.rules()).is_empty());
    }
}
