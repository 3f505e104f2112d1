//! An immutable policy snapshot: a Casbin enforcer built for one policy
//! version, never mutated after it is built, plus the decisions precomputed
//! from it for every (role, actor agency, owner agency, purpose) the policy
//! names, so a decision is a hash lookup whatever the number of rules.
//!
//! A call that misses the precomputed table asks the enforcer directly; a
//! panic inside Casbin is caught and becomes a denial.

use crate::rules::{FLAG_RECORDS_OBJECT, PolicyError, RECORDS_MAINTENANCE, Rule, RuleSet};
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use flagnet_core::{AgencyId, FieldClass, FieldClassSet, Purpose, RoleName};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::panic::AssertUnwindSafe;

type DecisionKey = (String, String, String, Purpose);

/// One policy version, ready to decide.
pub struct PolicySnapshot {
    enforcer: Enforcer,
    rules: RuleSet,
    roles_by_user: HashMap<(String, String), Vec<RoleName>>,
    regions_by_agency: HashMap<String, BTreeSet<String>>,
    role_ancestors: HashMap<String, BTreeSet<String>>,
    precomputed: HashMap<DecisionKey, FieldClassSet>,
    records_maintainers: HashSet<(String, String, String)>,
}

impl std::fmt::Debug for PolicySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySnapshot")
            .field("rules", &self.rules.rules.len())
            .field("precomputed", &self.precomputed.len())
            .finish_non_exhaustive()
    }
}

impl PolicySnapshot {
    /// Builds a fresh enforcer from checked rules and precomputes decisions.
    /// `extra_agencies` adds agencies the rules do not name (configured peers).
    pub async fn build(rules: RuleSet, extra_agencies: &[AgencyId]) -> Result<Self, PolicyError> {
        let model = DefaultModel::from_str(&rules.model)
            .await
            .map_err(|error| PolicyError::Model(error.to_string()))?;
        let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
            .await
            .map_err(|error| PolicyError::Model(error.to_string()))?;
        let mut by_type: HashMap<&'static str, Vec<Vec<String>>> = HashMap::new();
        for rule in &rules.rules {
            let (kind, row) = rule.casbin_row();
            by_type.entry(kind).or_default().push(row);
        }
        for (kind, rows) in by_type {
            let result = if kind == "p" {
                enforcer.add_policies(rows).await
            } else {
                enforcer.add_named_grouping_policies(kind, rows).await
            };
            result.map_err(|error| PolicyError::Model(error.to_string()))?;
        }

        let mut roles_by_user: HashMap<(String, String), Vec<RoleName>> = HashMap::new();
        let mut regions_by_agency: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        let mut agencies: BTreeSet<String> = extra_agencies.iter().map(ToString::to_string).collect();
        let mut roles: BTreeSet<String> = BTreeSet::new();
        for rule in &rules.rules {
            match rule {
                Rule::RoleAssignment { user, role, agency } => {
                    if let Ok(role_name) = RoleName::parse(role) {
                        roles_by_user
                            .entry((agency.clone(), user.clone()))
                            .or_default()
                            .push(role_name);
                    }
                    agencies.insert(agency.clone());
                    roles.insert(role.clone());
                }
                Rule::Region { agency, region } => {
                    regions_by_agency
                        .entry(agency.clone())
                        .or_default()
                        .insert(region.clone());
                    agencies.insert(agency.clone());
                }
                Rule::RoleInheritance { role, parent } => {
                    parents.entry(role.clone()).or_default().push(parent.clone());
                    roles.insert(role.clone());
                    roles.insert(parent.clone());
                }
                Rule::Permission { role, .. } => {
                    roles.insert(role.clone());
                }
            }
        }
        let regions: BTreeSet<String> = regions_by_agency.values().flatten().cloned().collect();
        for rule in &rules.rules {
            if let Rule::Permission { actor, owner, .. } = rule {
                for position in [actor, owner] {
                    if position != "any" && position != "same" && !regions.contains(position) {
                        agencies.insert(position.clone());
                    }
                }
            }
        }
        let role_ancestors = roles
            .iter()
            .map(|role| (role.clone(), ancestors_of(role, &parents)))
            .collect();

        let mut snapshot = Self {
            enforcer,
            rules,
            roles_by_user,
            regions_by_agency,
            role_ancestors,
            precomputed: HashMap::new(),
            records_maintainers: HashSet::new(),
        };
        snapshot.precompute(&roles, &agencies);
        Ok(snapshot)
    }

    fn precompute(&mut self, roles: &BTreeSet<String>, agencies: &BTreeSet<String>) {
        let mut precomputed = HashMap::new();
        let mut records_maintainers = HashSet::new();
        for role in roles {
            for actor in agencies {
                for owner in agencies {
                    for purpose in Purpose::ALL {
                        let allowed = FieldClass::ALL
                            .into_iter()
                            .filter(|class| self.enforce(role, actor, owner, class.as_str(), purpose.as_str()))
                            .collect();
                        precomputed.insert((role.clone(), actor.clone(), owner.clone(), purpose), allowed);
                    }
                    if self.enforce(role, actor, owner, FLAG_RECORDS_OBJECT, RECORDS_MAINTENANCE) {
                        records_maintainers.insert((role.clone(), actor.clone(), owner.clone()));
                    }
                }
            }
        }
        self.precomputed = precomputed;
        self.records_maintainers = records_maintainers;
    }

    /// Asks Casbin; an error or a panic inside it is a denial.
    fn enforce(&self, role: &str, actor: &str, owner: &str, object: &str, purpose: &str) -> bool {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.enforcer.enforce((role, actor, owner, object, purpose))
        }));
        match outcome {
            Ok(Ok(allowed)) => allowed,
            Ok(Err(error)) => {
                tracing::error!(role, actor, owner, object, purpose, %error, "policy engine error; denying");
                false
            }
            Err(_) => {
                tracing::error!(role, actor, owner, object, purpose, "policy engine panicked; denying");
                false
            }
        }
    }

    /// The field classes any of `roles` at `actor` may see of `owner`'s flags for `purpose`.
    pub fn allowed_classes(
        &self,
        roles: &[RoleName],
        actor: &AgencyId,
        owner: &AgencyId,
        purpose: Purpose,
    ) -> FieldClassSet {
        roles.iter().fold(FieldClassSet::EMPTY, |allowed, role| {
            let key = (role.to_string(), actor.to_string(), owner.to_string(), purpose);
            let for_role = match self.precomputed.get(&key) {
                Some(set) => *set,
                None => FieldClass::ALL
                    .into_iter()
                    .filter(|class| {
                        self.enforce(
                            role.as_str(),
                            actor.as_str(),
                            owner.as_str(),
                            class.as_str(),
                            purpose.as_str(),
                        )
                    })
                    .collect(),
            };
            allowed.union(for_role)
        })
    }

    /// Whether any of `roles` at `actor` may maintain `owner`'s flags and consents.
    pub fn may_maintain_records(&self, roles: &[RoleName], actor: &AgencyId, owner: &AgencyId) -> bool {
        roles.iter().any(|role| {
            let key = (role.to_string(), actor.to_string(), owner.to_string());
            self.records_maintainers.contains(&key)
                || self.enforce(
                    role.as_str(),
                    actor.as_str(),
                    owner.as_str(),
                    FLAG_RECORDS_OBJECT,
                    RECORDS_MAINTENANCE,
                )
        })
    }

    /// The roles assigned to `user` at `agency` (Casbin `g` rules, agency as domain).
    pub fn roles_of(&self, agency: &AgencyId, user: &str) -> Vec<RoleName> {
        self.roles_by_user
            .get(&(agency.to_string(), user.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Every role some person holds at `agency`: the ceiling of roles that
    /// agency's node may assert for its people in a federated query.
    pub fn roles_held_at(&self, agency: &AgencyId) -> BTreeSet<RoleName> {
        self.roles_by_user
            .iter()
            .filter(|((held_at, _), _)| held_at == agency.as_str())
            .flat_map(|(_, roles)| roles.iter().cloned())
            .collect()
    }

    /// Whether `agency` is `recipient` or belongs to the region `recipient`.
    pub fn agency_is_in(&self, agency: &AgencyId, recipient: &AgencyId) -> bool {
        agency == recipient
            || self
                .regions_by_agency
                .get(agency.as_str())
                .is_some_and(|regions| regions.contains(recipient.as_str()))
    }

    /// Whether holding `held` includes `wanted` (equal, or inherited).
    pub fn role_includes(&self, held: &RoleName, wanted: &RoleName) -> bool {
        held == wanted
            || self
                .role_ancestors
                .get(held.as_str())
                .is_some_and(|ancestors| ancestors.contains(wanted.as_str()))
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }
}

fn ancestors_of(role: &str, parents: &HashMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut pending = vec![role.to_owned()];
    while let Some(next) = pending.pop() {
        for parent in parents.get(&next).into_iter().flatten() {
            if seen.insert(parent.clone()) {
                pending.push(parent.clone());
            }
        }
    }
    seen
}
