//! An immutable policy snapshot: one policy version, checked, loaded into a
//! fresh Casbin enforcer that is never mutated afterwards, plus a decision
//! table made from it once, so a decision never scans rules.
//!
//! The table is one of two kinds. For flagnet's own matcher (the one in
//! `policies/model.conf`) the rules are compiled into an index
//! ([`crate::compiled`]): building costs O(rules) and a decision a bounded
//! number of hash lookups, at 100 rules or 10,000. For any other matcher that
//! passes the model check, every (role, actor, owner, purpose) tuple the rules
//! name is enumerated through Casbin at build time (slow for big policies, but
//! exact for any matcher), and a tuple outside the table asks Casbin.
//!
//! The Casbin enforcer stays in the snapshot as the reference: the policy
//! tests and [`PolicySnapshot::verify_against_casbin`] compare the table
//! with it. A panic or an error inside Casbin is caught and becomes a denial
//! and an error log, never a dropped request.

use crate::compiled::{Action, CompiledPolicy, RECORDS_BIT, class_bit};
use crate::model_check::{MatcherShape, check_model};
use crate::rules::{ANY_AGENCY, FLAG_RECORDS_OBJECT, PolicyError, RECORDS_MAINTENANCE, Rule, RuleSet, SAME_AGENCY};
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use flagnet_core::{AgencyId, FieldClass, FieldClassSet, Purpose, RoleName};
use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;

type DecisionKey = (String, String, String, Purpose);

/// How decisions are made from this snapshot.
enum DecisionTable {
    /// flagnet's matcher, compiled into an index
    Compiled(CompiledPolicy),
    /// another matcher: Casbin's answers for every named tuple
    Enumerated {
        precomputed: HashMap<DecisionKey, FieldClassSet>,
        records_maintainers: HashMap<(String, String, String), bool>,
    },
}

/// One policy version, ready to decide.
pub struct PolicySnapshot {
    enforcer: Enforcer,
    rules: RuleSet,
    table: DecisionTable,
    extra_agencies: Vec<AgencyId>,
    roles_by_user: HashMap<(String, String), Vec<RoleName>>,
    regions_by_agency: HashMap<String, BTreeSet<String>>,
    role_ancestors: HashMap<String, BTreeSet<String>>,
    /// the stored policy version this snapshot was built from, and its content hash
    stored: Option<(u64, String)>,
}

impl std::fmt::Debug for PolicySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = match &self.table {
            DecisionTable::Compiled(_) => "compiled",
            DecisionTable::Enumerated { .. } => "enumerated",
        };
        f.debug_struct("PolicySnapshot")
            .field("rules", &self.rules.rules.len())
            .field("table", &table)
            .field("version", &self.stored.as_ref().map(|(version, _)| version))
            .finish_non_exhaustive()
    }
}

/// How far the decision table and Casbin were compared, and where they differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasbinAgreement {
    /// decisions (one role, actor, owner, field class or records, purpose) compared
    pub checked: usize,
    /// decisions in the space that were not compared, because of the limit
    pub skipped: usize,
    /// each disagreement, readable
    pub disagreements: Vec<String>,
}

impl PolicySnapshot {
    /// Checks the model and every rule, builds a fresh enforcer, and makes the
    /// decision table. `extra_agencies` are agencies the rules do not name
    /// (configured peers); they are part of the enumerated table and of
    /// [`Self::verify_against_casbin`].
    pub async fn build(rules: RuleSet, extra_agencies: &[AgencyId]) -> Result<Self, PolicyError> {
        rules.check()?;
        let model = DefaultModel::from_str(&rules.model)
            .await
            .map_err(|error| PolicyError::Model(error.to_string()))?;
        let shape = check_model(&model)?;
        Self::assemble(model, rules, extra_agencies, shape).await
    }

    /// Builds without checking the model or the rules, and always through
    /// Casbin: only for tests that need a matcher the check would refuse.
    #[cfg(test)]
    pub(crate) async fn build_unchecked(rules: RuleSet, extra_agencies: &[AgencyId]) -> Result<Self, PolicyError> {
        let model = DefaultModel::from_str(&rules.model)
            .await
            .map_err(|error| PolicyError::Model(error.to_string()))?;
        Self::assemble(model, rules, extra_agencies, MatcherShape::Other).await
    }

    async fn assemble(
        model: DefaultModel,
        rules: RuleSet,
        extra_agencies: &[AgencyId],
        shape: MatcherShape,
    ) -> Result<Self, PolicyError> {
        let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
            .await
            .map_err(|error| PolicyError::Model(error.to_string()))?;
        let mut by_type: HashMap<&'static str, Vec<Vec<String>>> = HashMap::new();
        for rule in &rules.rules {
            let (kind, row) = rule.casbin_row();
            by_type.entry(kind).or_default().push(row);
        }
        for (kind, rows) in by_type {
            let added = if kind == "p" {
                enforcer.add_policies(rows).await
            } else {
                enforcer.add_named_grouping_policies(kind, rows).await
            };
            match added {
                Ok(true) => {}
                Ok(false) => return Err(PolicyError::Model(format!("casbin did not take the `{kind}` rules"))),
                Err(error) => return Err(PolicyError::Model(error.to_string())),
            }
        }

        let mut roles_by_user: HashMap<(String, String), Vec<RoleName>> = HashMap::new();
        let mut region_links: HashMap<String, Vec<String>> = HashMap::new();
        let mut role_links: HashMap<String, Vec<String>> = HashMap::new();
        for rule in &rules.rules {
            match rule {
                Rule::RoleAssignment { user, role, agency } => {
                    if let Ok(role_name) = RoleName::parse(role) {
                        roles_by_user
                            .entry((agency.clone(), user.clone()))
                            .or_default()
                            .push(role_name);
                    }
                }
                Rule::Region { agency, region } => region_links.entry(agency.clone()).or_default().push(region.clone()),
                Rule::RoleInheritance { role, parent } => {
                    role_links.entry(role.clone()).or_default().push(parent.clone());
                }
                Rule::Permission { .. } => {}
            }
        }
        let names = NamesInRules::collect(&rules.rules, extra_agencies);
        let role_ancestors = names
            .roles
            .iter()
            .map(|role| (role.clone(), ancestors_of(role, &role_links)))
            .collect();
        let regions_by_agency = names
            .agencies
            .iter()
            .chain(&names.regions)
            .map(|agency| (agency.clone(), ancestors_of(agency, &region_links)))
            .collect();

        let table = match shape {
            MatcherShape::Flagnet => DecisionTable::Compiled(CompiledPolicy::compile(&rules.rules)),
            MatcherShape::Other => DecisionTable::Enumerated {
                precomputed: HashMap::new(),
                records_maintainers: HashMap::new(),
            },
        };
        let mut snapshot = Self {
            enforcer,
            rules,
            table,
            extra_agencies: extra_agencies.to_vec(),
            roles_by_user,
            regions_by_agency,
            role_ancestors,
            stored: None,
        };
        if matches!(snapshot.table, DecisionTable::Enumerated { .. }) {
            snapshot.table = snapshot.enumerate(&names.roles, &names.agencies);
        }
        Ok(snapshot)
    }

    fn enumerate(&self, roles: &BTreeSet<String>, agencies: &BTreeSet<String>) -> DecisionTable {
        let mut precomputed = HashMap::new();
        let mut records_maintainers = HashMap::new();
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
                    let maintains = self.enforce(role, actor, owner, FLAG_RECORDS_OBJECT, RECORDS_MAINTENANCE);
                    records_maintainers.insert((role.clone(), actor.clone(), owner.clone()), maintains);
                }
            }
        }
        DecisionTable::Enumerated {
            precomputed,
            records_maintainers,
        }
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

    /// Casbin's own answer for one request, bypassing the decision table:
    /// slow (it scans every rule); for policy tests and verification only.
    pub fn casbin_allows(
        &self,
        role: &RoleName,
        actor: &AgencyId,
        owner: &AgencyId,
        object: &str,
        purpose: &str,
    ) -> bool {
        self.enforce(role.as_str(), actor.as_str(), owner.as_str(), object, purpose)
    }

    /// Whether the decision table is the compiled index (flagnet's matcher)
    /// rather than Casbin's answers enumerated per tuple.
    pub fn is_compiled(&self) -> bool {
        matches!(self.table, DecisionTable::Compiled(_))
    }

    /// The effect bits one role gets from the table.
    fn table_allows(&self, role: &RoleName, actor: &AgencyId, owner: &AgencyId, action: Action) -> u8 {
        match &self.table {
            DecisionTable::Compiled(compiled) => {
                compiled.allowed(role.as_str(), actor.as_str(), owner.as_str(), action)
            }
            DecisionTable::Enumerated {
                precomputed,
                records_maintainers,
            } => match action {
                Action::Disclose(purpose) => {
                    let key = (role.to_string(), actor.to_string(), owner.to_string(), purpose);
                    let allowed = match precomputed.get(&key) {
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
                    allowed.iter().fold(0, |bits, class| bits | class_bit(class))
                }
                Action::MaintainRecords => {
                    let key = (role.to_string(), actor.to_string(), owner.to_string());
                    let allowed = match records_maintainers.get(&key) {
                        Some(known) => *known,
                        None => self.enforce(
                            role.as_str(),
                            actor.as_str(),
                            owner.as_str(),
                            FLAG_RECORDS_OBJECT,
                            RECORDS_MAINTENANCE,
                        ),
                    };
                    if allowed { RECORDS_BIT } else { 0 }
                }
            },
        }
    }

    /// `any` and `same` are words of the policy language; an agency that
    /// calls itself one would match rules it should not, so it gets nothing.
    fn is_position_word(actor: &AgencyId, owner: &AgencyId) -> bool {
        let reserved = [ANY_AGENCY, SAME_AGENCY];
        let hit = reserved.contains(&actor.as_str()) || reserved.contains(&owner.as_str());
        if hit {
            tracing::warn!(actor = %actor, owner = %owner, "an agency named like a policy position word; denying");
        }
        hit
    }

    /// The field classes any of `roles` at `actor` may see of `owner`'s flags for `purpose`.
    pub fn allowed_classes(
        &self,
        roles: &[RoleName],
        actor: &AgencyId,
        owner: &AgencyId,
        purpose: Purpose,
    ) -> FieldClassSet {
        if Self::is_position_word(actor, owner) {
            return FieldClassSet::EMPTY;
        }
        let bits = roles.iter().fold(0u8, |bits, role| {
            bits | self.table_allows(role, actor, owner, Action::Disclose(purpose))
        });
        FieldClass::ALL
            .into_iter()
            .filter(|class| bits & class_bit(*class) != 0)
            .collect()
    }

    /// Whether any of `roles` at `actor` may maintain `owner`'s flags and consents.
    pub fn may_maintain_records(&self, roles: &[RoleName], actor: &AgencyId, owner: &AgencyId) -> bool {
        if Self::is_position_word(actor, owner) {
            return false;
        }
        roles
            .iter()
            .any(|role| self.table_allows(role, actor, owner, Action::MaintainRecords) != 0)
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

    /// Whether `agency` is `recipient` or belongs to the region `recipient`
    /// (directly or through a region of regions, as `g2` reads it).
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

    /// Labels this snapshot with the stored policy version it was built
    /// from, so whoever holds it knows which version decided.
    #[must_use]
    pub fn stored_as(mut self, version: u64, content_hash: String) -> Self {
        self.stored = Some((version, content_hash));
        self
    }

    /// The stored version this snapshot was built from, if it was labelled.
    pub fn stored_version(&self) -> Option<u64> {
        self.stored.as_ref().map(|(version, _)| *version)
    }

    /// The content hash of that version.
    pub fn stored_hash(&self) -> Option<&str> {
        self.stored.as_ref().map(|(_, hash)| hash.as_str())
    }

    /// Every role, agency and region the rules name, the extra agencies
    /// among the agencies.
    pub(crate) fn names(&self) -> NamesInRules {
        NamesInRules::collect(&self.rules.rules, &self.extra_agencies)
    }

    /// Compares the decision table with Casbin itself, one role at a time, over
    /// every role, agency and region the rules name (plus the extra agencies,
    /// and one role and one agency they do not name) × every purpose × every
    /// field class, and records maintenance. Each comparison costs a Casbin
    /// call that scans every rule; past `limit` comparisons an even sample of
    /// the space is taken and the rest counted as skipped.
    pub fn verify_against_casbin(&self, limit: usize) -> CasbinAgreement {
        let names = NamesInRules::collect(&self.rules.rules, &self.extra_agencies);
        let unlisted_role = unused_name("unlisted-role", &names.roles);
        let roles: Vec<RoleName> = names
            .roles
            .iter()
            .chain(std::iter::once(&unlisted_role))
            .filter_map(|role| RoleName::parse(role).ok())
            .collect();
        let every_name: BTreeSet<String> = names.agencies.union(&names.regions).cloned().collect();
        let unlisted_agency = unused_name("unlisted-agency", &every_name);
        let agencies: Vec<AgencyId> = every_name
            .iter()
            .chain(std::iter::once(&unlisted_agency))
            .filter_map(|agency| AgencyId::parse(agency).ok())
            .collect();
        let per_tuple = Purpose::ALL.len() * FieldClass::ALL.len() + 1;
        let tuples = roles.len() * agencies.len() * agencies.len();
        let stride = (tuples * per_tuple).div_ceil(limit.max(1)).max(1);
        let mut agreement = CasbinAgreement {
            checked: 0,
            skipped: 0,
            disagreements: Vec::new(),
        };
        for index in 0..tuples {
            let role = &roles[index / (agencies.len() * agencies.len())];
            let actor = &agencies[index / agencies.len() % agencies.len()];
            let owner = &agencies[index % agencies.len()];
            if stride > 1 && !spread(index).is_multiple_of(stride) {
                agreement.skipped += per_tuple;
                continue;
            }
            let single_role = std::slice::from_ref(role);
            for purpose in Purpose::ALL {
                let table = self.allowed_classes(single_role, actor, owner, purpose);
                for class in FieldClass::ALL {
                    let casbin = self.casbin_allows(role, actor, owner, class.as_str(), purpose.as_str());
                    if casbin != table.contains(class) {
                        agreement.disagreements.push(format!(
                            "{role} at {actor}, flag of {owner}, {class} for {purpose}: casbin-rs says {}, the \
                             snapshot says {}",
                            verdict(casbin),
                            verdict(table.contains(class))
                        ));
                    }
                }
            }
            let table = self.may_maintain_records(single_role, actor, owner);
            let casbin = self.casbin_allows(role, actor, owner, FLAG_RECORDS_OBJECT, RECORDS_MAINTENANCE);
            if casbin != table {
                agreement.disagreements.push(format!(
                    "{role} at {actor}, records of {owner}: casbin-rs says {}, the snapshot says {}",
                    verdict(casbin),
                    verdict(table)
                ));
            }
            agreement.checked += per_tuple;
        }
        agreement
    }
}

/// A well-mixed hash of `index` (splitmix64), so a sample does not follow
/// the layout of the space.
fn spread(index: usize) -> usize {
    let mut mixed = (index as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (mixed ^ (mixed >> 31)) as usize
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

/// A name like `base` that is not among `taken`.
fn unused_name(base: &str, taken: &BTreeSet<String>) -> String {
    (0..)
        .map(|n| if n == 0 { base.to_owned() } else { format!("{base}{n}") })
        .find(|name| !taken.contains(name))
        .unwrap_or_else(|| base.to_owned())
}

/// Every role, agency and region a rule set names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NamesInRules {
    pub(crate) roles: BTreeSet<String>,
    pub(crate) agencies: BTreeSet<String>,
    pub(crate) regions: BTreeSet<String>,
}

impl NamesInRules {
    pub(crate) fn collect(rules: &[Rule], extra_agencies: &[AgencyId]) -> Self {
        let mut roles = BTreeSet::new();
        let mut agencies: BTreeSet<String> = extra_agencies.iter().map(ToString::to_string).collect();
        let mut regions = BTreeSet::new();
        for rule in rules {
            match rule {
                Rule::RoleAssignment { role, agency, .. } => {
                    roles.insert(role.clone());
                    agencies.insert(agency.clone());
                }
                Rule::Region { agency, region } => {
                    agencies.insert(agency.clone());
                    regions.insert(region.clone());
                }
                Rule::RoleInheritance { role, parent } => {
                    roles.insert(role.clone());
                    roles.insert(parent.clone());
                }
                Rule::Permission { role, .. } => {
                    roles.insert(role.clone());
                }
            }
        }
        for rule in rules {
            if let Rule::Permission { actor, owner, .. } = rule {
                for position in [actor, owner] {
                    if position != ANY_AGENCY && position != SAME_AGENCY && !regions.contains(position) {
                        agencies.insert(position.clone());
                    }
                }
            }
        }
        Self {
            roles,
            agencies,
            regions,
        }
    }
}

fn ancestors_of(name: &str, links: &HashMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut pending = vec![name.to_owned()];
    while let Some(next) = pending.pop() {
        for linked in links.get(&next).into_iter().flatten() {
            if seen.insert(linked.clone()) {
                pending.push(linked.clone());
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    const DEFAULT_MODEL: &str = include_str!("../../../policies/model.conf");

    fn with_matcher(matcher: &str) -> String {
        let start = DEFAULT_MODEL.find("m = ").expect("the default model has a matcher");
        format!("{}m = {matcher}\n", &DEFAULT_MODEL[..start])
    }

    fn permission(role: &str, actor: &str, owner: &str, object: &str, purpose: &str) -> Rule {
        Rule::Permission {
            role: role.into(),
            actor: actor.into(),
            owner: owner.into(),
            object: object.into(),
            purpose: purpose.into(),
            allow: true,
        }
    }

    /// Captures what is logged on this thread until the guard drops.
    struct CapturedLogs {
        buffer: Buffer,
        _guard: tracing::subscriber::DefaultGuard,
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl CapturedLogs {
        fn start() -> Self {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            Self {
                buffer,
                _guard: tracing::subscriber::set_default(subscriber),
            }
        }

        fn take(&self) -> String {
            let mut bytes = self.buffer.0.lock().unwrap();
            String::from_utf8_lossy(&std::mem::take(&mut *bytes)).into_owned()
        }
    }

    fn agency(name: &str) -> AgencyId {
        AgencyId::parse(name).unwrap()
    }

    fn role(name: &str) -> RoleName {
        RoleName::parse(name).unwrap()
    }

    #[tokio::test]
    async fn a_panic_inside_casbin_at_build_time_is_a_denial() {
        // keyMatch slices the request value at the byte where the pattern's `*`
        // is; on a non-ASCII value that is not a character boundary and it panics.
        let rules = RuleSet {
            model: with_matcher(
                "g3(r.role, p.role) && keyMatch(r.actor, p.actor) && r.field == p.field && r.purpose == p.purpose",
            ),
            rules: vec![
                permission("liaison", "x*", "any", "presence", "emergency_response"),
                Rule::Region {
                    agency: "xa".into(),
                    region: "r".into(),
                },
                Rule::Region {
                    agency: "\u{e9}-agency".into(),
                    region: "r".into(),
                },
            ],
        };
        let logs = CapturedLogs::start();
        let snapshot = PolicySnapshot::build_unchecked(rules, &[])
            .await
            .expect("a panicking matcher still builds");
        assert!(!snapshot.is_compiled());
        let logged = logs.take();
        assert!(logged.contains("policy engine panicked; denying"), "{logged}");
        assert!(!snapshot.enforce("liaison", "\u{e9}-agency", "xa", "presence", "emergency_response"));
        let logged = logs.take();
        assert!(logged.contains("ERROR") && logged.contains("panicked"), "{logged}");
        let elsewhere = snapshot.allowed_classes(
            &[role("liaison")],
            &agency("xa"),
            &agency("xa"),
            Purpose::EmergencyResponse,
        );
        assert_eq!(elsewhere.iter().collect::<Vec<_>>(), vec![FieldClass::Presence]);
    }

    #[tokio::test]
    async fn a_panic_inside_casbin_at_decision_time_is_a_denial_through_the_engine() {
        // regexMatch unwraps Regex::new, so an invalid pattern panics on every call.
        let rules = RuleSet {
            model: with_matcher("g3(r.role, p.role) && regexMatch(r.actor, p.actor) && r.field == p.field"),
            rules: vec![permission("liaison", "(", "any", "presence", "emergency_response")],
        };
        let snapshot = PolicySnapshot::build_unchecked(rules, &[]).await.unwrap();
        let engine = crate::DecisionEngine::new(snapshot);
        let actor = crate::Actor {
            agency: agency("rolla-pd"),
            user: None,
            roles: vec![role("liaison")],
        };
        let logs = CapturedLogs::start();
        let allowed = engine.snapshot().allowed_classes(
            &actor.roles,
            &actor.agency,
            &agency("phelps-so"),
            Purpose::EmergencyOverride,
        );
        assert!(allowed.is_empty());
        let logged = logs.take();
        assert!(logged.contains("policy engine panicked; denying"), "{logged}");
        let flag = flagnet_core::Flag {
            id: uuid::Uuid::new_v4(),
            owner: agency("phelps-so"),
            status: flagnet_core::FlagStatus::Active,
            review_date: None,
            basis: None,
            content: flagnet_core::FlagContent::default(),
            subject_tokens: vec![],
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_by: String::new(),
            revision: 1,
        };
        let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let disclosure = engine.decide(&actor, Purpose::EmergencyOverride, &flag, &[], now);
        assert_eq!(disclosure, crate::Disclosure::denied_all(crate::DenyReason::Policy));
        assert!(!disclosure.is_override());
        assert!(logs.take().contains("panicked"));
        assert!(!engine.may(&actor, &agency("phelps-so"), crate::Operation::MaintainRecords));
    }

    #[tokio::test]
    async fn the_checked_build_refuses_what_the_unchecked_one_takes() {
        let rules = RuleSet {
            model: with_matcher("g3(r.role, p.role) && regexMatch(r.actor, p.actor) && r.field == p.field"),
            rules: vec![permission("liaison", "any", "any", "presence", "emergency_response")],
        };
        let error = PolicySnapshot::build(rules, &[]).await.unwrap_err().to_string();
        assert!(error.contains("`regexMatch(`"), "{error}");
    }

    #[tokio::test]
    async fn agencies_named_like_position_words_get_nothing() {
        let rules = RuleSet {
            model: DEFAULT_MODEL.to_owned(),
            rules: vec![permission(
                "dispatcher",
                "any",
                "same",
                "presence",
                "emergency_response",
            )],
        };
        let snapshot = PolicySnapshot::build(rules, &[]).await.unwrap();
        let dispatcher = [role("dispatcher")];
        let own = snapshot.allowed_classes(
            &dispatcher,
            &agency("rolla-pd"),
            &agency("rolla-pd"),
            Purpose::EmergencyResponse,
        );
        assert!(own.contains(FieldClass::Presence));
        for (actor, owner) in [
            ("same", "rolla-pd"),
            ("rolla-pd", "same"),
            ("any", "any"),
            ("same", "same"),
        ] {
            let allowed =
                snapshot.allowed_classes(&dispatcher, &agency(actor), &agency(owner), Purpose::EmergencyResponse);
            assert!(allowed.is_empty(), "{actor} asking about {owner}");
        }
    }
}
