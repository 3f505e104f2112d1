//! flagnet's matcher compiled into an index, so a decision costs the same
//! with a hundred rules or ten thousand.
//!
//! Casbin evaluates its matcher once per rule per request (about 1 µs a rule
//! here, so 10 ms a request at 10,000 rules), and enumerating every
//! (role, actor, owner, purpose) tuple through it at build time costs that
//! again for each tuple. The matcher in `policies/model.conf` is fixed and
//! uses only equality and `g2`/`g3`, so its meaning can be stated exactly:
//!
//! a rule `p, R, A, O, F, P, eft` matches a request `(r, a, o, f, p)` when
//! `R` is `r` or one of its ancestors (`g3`, transitively), `A` is `any`, `a`
//! or a region `a` belongs to (`g2`, transitively), `O` is `any`, `same` (and
//! `o == a`), `o` or a region of `o`, and `F == f`, `P == p`. A request is
//! allowed when some matching rule allows and none denies.
//!
//! The index keys each rule by (role, action, actor position, owner
//! position); a decision looks up the few keys a request can match: the
//! role's ancestors × the actor's positions × the owner's positions. That is
//! bounded by the depth of the role chain and the number of regions an agency
//! is in (both at most 9 deep), never by the number of rules.
//!
//! This module must stay exactly equivalent to Casbin on that matcher: it is
//! used only when [`crate::model_check`] recognises the matcher verbatim, and
//! the tests compare it with casbin-rs on every tuple of random policies (and
//! the policy tests compare both, and pycasbin, on the default policy).

use crate::rules::{ANY_AGENCY, FLAG_RECORDS_OBJECT, RECORDS_MAINTENANCE, Rule, SAME_AGENCY};
use flagnet_core::{FieldClass, Purpose};
use std::collections::HashMap;

/// What a request asks to do: see field classes for a purpose, or maintain records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    Disclose(Purpose),
    MaintainRecords,
}

/// The bit of a field class in an effect mask; `flag_records` under
/// [`Action::MaintainRecords`] uses bit 0.
pub(crate) fn class_bit(class: FieldClass) -> u8 {
    let index = FieldClass::ALL
        .iter()
        .position(|known| *known == class)
        .unwrap_or_default();
    1 << index
}
pub(crate) const RECORDS_BIT: u8 = 1;

/// Position ids: `any` and `same` are positions, not names.
const ANY_POSITION: u32 = 0;
const SAME_POSITION: u32 = 1;
const FIRST_NAME_ID: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GrantKey {
    role: u32,
    action: Action,
    actor: u32,
    owner: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Effects {
    allow: u8,
    deny: u8,
}

/// The index built from one checked rule set.
#[derive(Debug)]
pub(crate) struct CompiledPolicy {
    ids: HashMap<String, u32>,
    /// a role id → itself and every role it inherits from
    role_closure: HashMap<u32, Box<[u32]>>,
    /// a name id → itself and every region it belongs to
    positions: HashMap<u32, Box<[u32]>>,
    grants: HashMap<GrantKey, Effects>,
}

impl CompiledPolicy {
    pub(crate) fn compile(rules: &[Rule]) -> Self {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut intern = |name: &str| -> u32 {
            let next = FIRST_NAME_ID + u32::try_from(ids.len()).unwrap_or(u32::MAX - FIRST_NAME_ID);
            *ids.entry(name.to_owned()).or_insert(next)
        };
        let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut regions: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut grants: HashMap<GrantKey, Effects> = HashMap::new();
        for rule in rules {
            match rule {
                Rule::Permission {
                    role,
                    actor,
                    owner,
                    object,
                    purpose,
                    allow,
                } => {
                    let Some((action, bit)) = action_and_bit(object, purpose) else {
                        debug_assert!(false, "checked rules name known objects and purposes");
                        continue;
                    };
                    let actor = match actor.as_str() {
                        ANY_AGENCY => ANY_POSITION,
                        name => intern(name),
                    };
                    let owner = match owner.as_str() {
                        ANY_AGENCY => ANY_POSITION,
                        SAME_AGENCY => SAME_POSITION,
                        name => intern(name),
                    };
                    let key = GrantKey {
                        role: intern(role),
                        action,
                        actor,
                        owner,
                    };
                    let effects = grants.entry(key).or_default();
                    if *allow {
                        effects.allow |= bit;
                    } else {
                        effects.deny |= bit;
                    }
                }
                Rule::RoleInheritance { role, parent } => {
                    let (role, parent) = (intern(role), intern(parent));
                    parents.entry(role).or_default().push(parent);
                }
                Rule::Region { agency, region } => {
                    let (agency, region) = (intern(agency), intern(region));
                    regions.entry(agency).or_default().push(region);
                }
                Rule::RoleAssignment { .. } => {}
            }
        }
        let role_closure = ids.values().map(|id| (*id, closure(*id, &parents))).collect();
        let positions = ids.values().map(|id| (*id, closure(*id, &regions))).collect();
        Self {
            ids,
            role_closure,
            positions,
            grants,
        }
    }

    /// The effect bits allowed to `role` at `actor` on `owner`'s records for `action`.
    pub(crate) fn allowed(&self, role: &str, actor: &str, owner: &str, action: Action) -> u8 {
        let Some(role_ids) = self.ids.get(role).and_then(|id| self.role_closure.get(id)) else {
            return 0;
        };
        let actor_positions = self.positions_of(actor);
        let owner_positions = self.positions_of(owner);
        let same = (actor == owner).then_some(SAME_POSITION);
        let mut effects = Effects::default();
        for &role in role_ids.iter() {
            for &actor in std::iter::once(&ANY_POSITION).chain(actor_positions) {
                for &owner in std::iter::once(&ANY_POSITION)
                    .chain(same.as_ref())
                    .chain(owner_positions)
                {
                    if let Some(found) = self.grants.get(&GrantKey {
                        role,
                        action,
                        actor,
                        owner,
                    }) {
                        effects.allow |= found.allow;
                        effects.deny |= found.deny;
                    }
                }
            }
        }
        effects.allow & !effects.deny
    }

    fn positions_of(&self, name: &str) -> &[u32] {
        self.ids
            .get(name)
            .and_then(|id| self.positions.get(id))
            .map_or(&[], |positions| positions)
    }
}

fn action_and_bit(object: &str, purpose: &str) -> Option<(Action, u8)> {
    if object == FLAG_RECORDS_OBJECT && purpose == RECORDS_MAINTENANCE {
        return Some((Action::MaintainRecords, RECORDS_BIT));
    }
    let class = FieldClass::parse(object).ok()?;
    let purpose = Purpose::parse(purpose).ok()?;
    Some((Action::Disclose(purpose), class_bit(class)))
}

/// `start` and everything reachable from it through `links`.
fn closure(start: u32, links: &HashMap<u32, Vec<u32>>) -> Box<[u32]> {
    let mut reached = vec![start];
    let mut next = 0;
    while next < reached.len() {
        for linked in links.get(&reached[next]).into_iter().flatten() {
            if !reached.contains(linked) {
                reached.push(*linked);
            }
        }
        next += 1;
    }
    reached.into_boxed_slice()
}
