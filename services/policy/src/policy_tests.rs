//! Policy tests: rows of request → expected decision, run against a policy
//! snapshot before it is trusted (at `flagctl policy test`, in the cargo
//! tests, and on every policy edit). Each row names one role at one agency,
//! the owner of the flag, a field class (or `flag_records`), a purpose (or
//! `records_maintenance`) and `allow` or `deny`.
//!
//! A row is decided by the snapshot's decision table, the path every request
//! takes, and, with [`CrossCheck::WithCasbin`], by Casbin itself on the same
//! snapshot, so a table that drifts from Casbin fails here too. Failures say
//! the line, the request, what was expected and what each engine said. The
//! decisions can be written out ([`PolicyTestReport::decisions_csv`]) for
//! `policies/tests/oracle.py` to compare with pycasbin row by row.

use crate::rules::{FLAG_RECORDS_OBJECT, PolicyError, PolicySource, RECORDS_MAINTENANCE};
use crate::snapshot::PolicySnapshot;
use flagnet_core::{AgencyId, FieldClass, Purpose, RoleName};
use std::fmt;
use std::path::Path;

/// The header every policy tests file starts with.
pub const POLICY_TESTS_HEADER: [&str; 6] = [
    "role",
    "actor_agency",
    "owner_agency",
    "field_class",
    "purpose",
    "expected",
];

/// What a row asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestedRequest {
    /// see one field class for a purpose
    Disclose { class: FieldClass, purpose: Purpose },
    /// maintain the owner's flags and consents (`flag_records`, `records_maintenance`)
    MaintainRecords,
}

impl TestedRequest {
    pub fn object(self) -> &'static str {
        match self {
            TestedRequest::Disclose { class, .. } => class.as_str(),
            TestedRequest::MaintainRecords => FLAG_RECORDS_OBJECT,
        }
    }

    pub fn purpose(self) -> &'static str {
        match self {
            TestedRequest::Disclose { purpose, .. } => purpose.as_str(),
            TestedRequest::MaintainRecords => RECORDS_MAINTENANCE,
        }
    }
}

/// One row of a policy tests file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTestCase {
    /// the line in the tests file, from 1
    pub line: usize,
    pub role: RoleName,
    pub actor: AgencyId,
    pub owner: AgencyId,
    pub request: TestedRequest,
    pub expected: bool,
}

impl fmt::Display for PolicyTestCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {} asking for {} of a flag owned by {} for {}",
            self.role,
            self.actor,
            self.request.object(),
            self.owner,
            self.request.purpose()
        )
    }
}

/// Whether rows are decided by Casbin as well as by the snapshot's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossCheck {
    /// the table only: what requests see; cheap at any policy size
    SnapshotOnly,
    /// the table and Casbin: each row costs a Casbin call that scans every rule
    WithCasbin,
}

/// How one row came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTestOutcome {
    pub case: PolicyTestCase,
    /// the snapshot's decision
    pub got: bool,
    /// Casbin's decision, when asked
    pub casbin: Option<bool>,
}

impl PolicyTestOutcome {
    pub fn passed(&self) -> bool {
        self.got == self.case.expected && self.casbin.is_none_or(|casbin| casbin == self.case.expected)
    }
}

/// A row that failed, readable as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTestFailure<'a> {
    pub outcome: &'a PolicyTestOutcome,
}

fn word(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

impl fmt::Display for PolicyTestFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PolicyTestOutcome { case, got, casbin } = self.outcome;
        write!(
            f,
            "line {}: {case}: expected {}, got {}",
            case.line,
            word(case.expected),
            word(*got)
        )?;
        match casbin {
            Some(casbin) if casbin != got => write!(f, " (casbin-rs says {})", word(*casbin)),
            _ => Ok(()),
        }
    }
}

/// Every row's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTestReport {
    pub outcomes: Vec<PolicyTestOutcome>,
}

impl PolicyTestReport {
    pub fn rows(&self) -> usize {
        self.outcomes.len()
    }

    pub fn failures(&self) -> Vec<PolicyTestFailure<'_>> {
        self.outcomes
            .iter()
            .filter(|outcome| !outcome.passed())
            .map(|outcome| PolicyTestFailure { outcome })
            .collect()
    }

    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(PolicyTestOutcome::passed)
    }

    /// The snapshot's decisions as CSV, one line per row, keyed by the row's
    /// line in the tests file: what `oracle.py --compare` reads.
    pub fn decisions_csv(&self) -> String {
        let mut csv = String::from("line,role,actor_agency,owner_agency,field_class,purpose,decision\n");
        for PolicyTestOutcome { case, got, .. } in &self.outcomes {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                case.line,
                case.role,
                case.actor,
                case.owner,
                case.request.object(),
                case.request.purpose(),
                word(*got)
            ));
        }
        csv
    }
}

/// Parses a policy tests file: the header, then one row per line; blank
/// lines and `#` comments are skipped. Every identifier is checked as a
/// policy row's would be.
pub fn parse_policy_tests(origin: &str, text: &str) -> Result<Vec<PolicyTestCase>, PolicyError> {
    let mut cases = Vec::new();
    let mut seen_header = false;
    for (index, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| PolicyError::BadTestRow {
            origin: origin.to_owned(),
            line: index + 1,
            reason,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if !seen_header {
            if fields != POLICY_TESTS_HEADER {
                return Err(bad(format!(
                    "the first row must be the header `{}`",
                    POLICY_TESTS_HEADER.join(",")
                )));
            }
            seen_header = true;
            continue;
        }
        cases.push(parse_case(index + 1, &fields).map_err(|reason| bad(format!("row `{line}`: {reason}")))?);
    }
    if !seen_header {
        return Err(PolicyError::BadTestRow {
            origin: origin.to_owned(),
            line: 0,
            reason: "no header and no rows".to_owned(),
        });
    }
    Ok(cases)
}

fn parse_case(line: usize, fields: &[&str]) -> Result<PolicyTestCase, String> {
    let [role, actor, owner, object, purpose, expected] = fields else {
        return Err(format!("a row has 6 fields, found {}", fields.len()));
    };
    let request = if *object == FLAG_RECORDS_OBJECT || *purpose == RECORDS_MAINTENANCE {
        if *object != FLAG_RECORDS_OBJECT || *purpose != RECORDS_MAINTENANCE {
            return Err(format!(
                "`{FLAG_RECORDS_OBJECT}` goes only with `{RECORDS_MAINTENANCE}`, and the other way round"
            ));
        }
        TestedRequest::MaintainRecords
    } else {
        TestedRequest::Disclose {
            class: FieldClass::parse(object).map_err(|error| error.to_string())?,
            purpose: Purpose::parse(purpose).map_err(|error| error.to_string())?,
        }
    };
    let expected = match *expected {
        "allow" => true,
        "deny" => false,
        other => return Err(format!("expected must be exactly `allow` or `deny`, found `{other}`")),
    };
    Ok(PolicyTestCase {
        line,
        role: RoleName::parse(role).map_err(|error| error.to_string())?,
        actor: AgencyId::parse(actor).map_err(|error| error.to_string())?,
        owner: AgencyId::parse(owner).map_err(|error| error.to_string())?,
        request,
        expected,
    })
}

/// Decides every row against `snapshot`.
pub fn run_policy_tests_on(
    snapshot: &PolicySnapshot,
    cases: &[PolicyTestCase],
    cross_check: CrossCheck,
) -> PolicyTestReport {
    let outcomes = cases
        .iter()
        .map(|case| {
            let roles = std::slice::from_ref(&case.role);
            let got = match case.request {
                TestedRequest::Disclose { class, purpose } => snapshot
                    .allowed_classes(roles, &case.actor, &case.owner, purpose)
                    .contains(class),
                TestedRequest::MaintainRecords => snapshot.may_maintain_records(roles, &case.actor, &case.owner),
            };
            let casbin = (cross_check == CrossCheck::WithCasbin).then(|| {
                snapshot.casbin_allows(
                    &case.role,
                    &case.actor,
                    &case.owner,
                    case.request.object(),
                    case.request.purpose(),
                )
            });
            PolicyTestOutcome {
                case: case.clone(),
                got,
                casbin,
            }
        })
        .collect();
    PolicyTestReport { outcomes }
}

/// Reads the policy in `policy_dir` and the rows in `tests_file`, builds a
/// snapshot, and decides every row with both the snapshot and Casbin.
pub async fn run_policy_tests(policy_dir: &Path, tests_file: &Path) -> Result<PolicyTestReport, PolicyError> {
    let rules = PolicySource::new(policy_dir).read()?;
    let snapshot = PolicySnapshot::build(rules, &[]).await?;
    let text = std::fs::read_to_string(tests_file).map_err(|error| PolicyError::Unreadable {
        path: tests_file.to_owned(),
        reason: error.to_string(),
    })?;
    let cases = parse_policy_tests(&tests_file.display().to_string(), &text)?;
    Ok(run_policy_tests_on(&snapshot, &cases, CrossCheck::WithCasbin))
}
