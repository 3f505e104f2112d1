//! `flagnet.v1.PolicyAdmin`, for privacy officers of this node's agency: the
//! node's policy versions (read one, propose a change and see its impact and
//! the policy tests, apply it against the version seen, list history, diff
//! two versions, roll back, and approve or reject what waits under the
//! two-person rule), and the break-the-glass review queue.
//!
//! Every change takes the same gate ([`flagnet_policy::review_change`]): the
//! candidate text is checked and built into a fresh snapshot, the policy
//! tests in `policy.dir/tests/cases.csv` are decided by it, and its impact
//! against the version in force is computed. Only then is it stored (as the
//! next version, if the caller's version is still the latest) and swapped
//! into the decision engine, so it governs the next request; a refused
//! change leaves the stored versions and the engine as they were. Changes on
//! one node are made one at a time; replicas sharing a PostgreSQL store are
//! kept apart by the store, and each follows the versions the others apply.
//!
//! Anyone but a privacy officer of this agency is refused before the request
//! is read. Every call is audited as `policy_change`, and its `incident_id`
//! says what happened in one line: `policy:apply v8 (+3/-1 decisions): reason`.

use crate::audit_trail::{AuditTrail, authenticate_audited};
use crate::caller::Caller;
use crate::config::NodeConfig;
use crate::convert::{self, parse_uuid, proto_field_class};
use crate::flag_index::{FlagIndexCore, reason};
use crate::status::to_status;
use flagnet_audit::{AuditAction, AuditOutcome, AuditRecord};
use flagnet_core::{
    AgencyId, Clock, CoreError, CoreResult, NewPolicyVersion, PolicyApproval, PolicyChangeKind, PolicyContent,
    PolicyProposal, PolicyVersion, ProposalClosing, ProposalOutcome, ReviewItem, ReviewResolution, RoleName, Store,
};
use flagnet_policy::{
    ChangeReview, DecisionEngine, DecisionImpact, PolicyEdit, PolicySnapshot, PolicySource, PolicyTestSet,
    ReviewContext, RuleDiff, RuleSet, apply_edit, decision_impact, parse_policy_tests, review_change, rule_diff,
};
use flagnet_proto::v1 as pb;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

/// The role that administers policy and reviews overrides.
pub const PRIVACY_OFFICER_ROLE: &str = "privacy_officer";
/// The most review items one call lists.
const REVIEW_PAGE: usize = 500;
/// The versions `History` lists unless asked for fewer.
const HISTORY_PAGE: usize = 50;
/// The most pending changes one call lists.
const PENDING_PAGE: usize = 500;
/// The most flipped decisions one answer lists (the counts are always complete).
const MAX_LISTED_FLIPS: usize = 10_000;

/// How this node administers its policy, from `[policy]` and its peers.
#[derive(Debug, Clone)]
pub struct PolicySettings {
    /// the seed of version 1, and where the policy tests are read from
    pub dir: PathBuf,
    pub two_person_rule: bool,
    pub poll_interval: Duration,
    /// the node's own agency and its peers: the impact covers them even
    /// where the rules do not name them
    pub impact_agencies: Vec<AgencyId>,
}

impl PolicySettings {
    pub fn from_config(config: &NodeConfig) -> Self {
        let mut impact_agencies = vec![config.agency()];
        impact_agencies.extend(
            config
                .federation
                .peers
                .iter()
                .filter_map(|peer| AgencyId::parse(&peer.agency).ok()),
        );
        Self {
            dir: config.policy.dir.clone(),
            two_person_rule: config.policy.two_person_rule,
            poll_interval: Duration::from_millis(config.policy.poll_interval_ms),
            impact_agencies,
        }
    }

    fn tests_file(&self) -> PathBuf {
        self.dir.join("tests").join("cases.csv")
    }
}

/// The decision engine of a starting node: the latest stored policy version
/// of `agency`, or, in a store that has none, the policy in `dir` stored as
/// version 1 (and audited as such).
pub async fn load_policy(
    store: &dyn Store,
    audit: &AuditTrail,
    clock: &dyn Clock,
    dir: &Path,
    agency: &AgencyId,
) -> Result<DecisionEngine, String> {
    let source = PolicySource::new(dir);
    let snapshot_agencies = [agency.clone()];
    let latest = store
        .latest_policy_version(agency)
        .await
        .map_err(|error| error.to_string())?;
    let (stored, built) = match latest {
        Some(stored) => {
            warn_if_the_directory_moved(store, &source, agency, &stored).await;
            (stored, None)
        }
        None => seed_policy(store, audit, clock, &source, agency, &snapshot_agencies).await?,
    };
    let snapshot = match built {
        Some(snapshot) => snapshot,
        None => {
            let rules = RuleSet::from_content(&stored.content)
                .map_err(|error| format!("stored policy version {}: {error}", stored.version))?;
            PolicySnapshot::build(rules, &snapshot_agencies)
                .await
                .map_err(|error| format!("stored policy version {}: {error}", stored.version))?
        }
    };
    tracing::info!(agency = %agency, version = stored.version, hash = %stored.content_hash, "policy in force");
    Ok(DecisionEngine::new(
        snapshot.stored_as(stored.version, stored.content_hash),
    ))
}

/// The stored versions govern once seeded; an operator who edits the files
/// in `policy.dir` afterwards is told that those edits are not in force.
async fn warn_if_the_directory_moved(
    store: &dyn Store,
    source: &PolicySource,
    agency: &AgencyId,
    stored: &PolicyVersion,
) {
    let Ok(on_disk) = source.read_content() else {
        return;
    };
    let on_disk = on_disk.content_hash();
    let seed = match store.policy_version(agency, 1).await {
        Ok(Some(seed)) => seed.content_hash,
        _ => return,
    };
    if on_disk != seed && on_disk != stored.content_hash {
        tracing::warn!(
            dir = %source.dir.display(),
            version = stored.version,
            "the policy directory changed since this node was seeded from it; the stored version governs, not \
             the files (propose them with `flagctl policy propose --policy-file` to apply them)"
        );
    }
}

/// Stores the policy in `source` as version 1, with the snapshot it built to
/// check it; when a replica seeded first, its version 1 is taken instead
/// (and built by the caller).
async fn seed_policy(
    store: &dyn Store,
    audit: &AuditTrail,
    clock: &dyn Clock,
    source: &PolicySource,
    agency: &AgencyId,
    snapshot_agencies: &[AgencyId],
) -> Result<(PolicyVersion, Option<PolicySnapshot>), String> {
    let content = source.read_content().map_err(|error| error.to_string())?;
    let rules = RuleSet::from_content(&content).map_err(|error| error.to_string())?;
    let snapshot = PolicySnapshot::build(rules, snapshot_agencies)
        .await
        .map_err(|error| error.to_string())?;
    let seed = NewPolicyVersion {
        agency: agency.clone(),
        base_version: 0,
        author: format!("seed:{}", source.dir.display()),
        created_at: clock.now(),
        reason: "seeded from the node's policy directory".into(),
        kind: PolicyChangeKind::Seed,
        content,
        impact_summary: String::new(),
        proposal: None,
        approval: None,
    };
    let seeded = match store.append_policy_version(seed).await {
        Ok(seeded) => seeded,
        Err(CoreError::Aborted(_)) => {
            let first = store
                .latest_policy_version(agency)
                .await
                .map_err(|error| error.to_string())?
                .ok_or_else(|| "the policy seed was aborted, yet no version is stored".to_owned())?;
            return Ok((first, None));
        }
        Err(error) => return Err(error.to_string()),
    };
    let mut record = AuditRecord::new(clock.now(), Uuid::new_v4(), AuditAction::PolicyChange);
    record.actor_agency = Some(agency.clone());
    record.outcome = AuditOutcome::Ok;
    record.grpc_code = Code::Ok as u32;
    record.incident_id = Some(format!(
        "policy:seed v1 from {} ({})",
        source.dir.display(),
        &seeded.content_hash[..12]
    ));
    audit.append(record).await.map_err(|error| error.to_string())?;
    tracing::info!(agency = %agency, dir = %source.dir.display(), "policy seeded as version 1");
    Ok((seeded, Some(snapshot)))
}

/// A change stored by [`PolicyAdministration::commit`].
enum Committed {
    Applied(PolicyVersion),
    Pending(PolicyProposal),
}

/// The state behind the service, shared with the task that follows the store.
#[derive(Debug)]
struct PolicyAdministration {
    core: FlagIndexCore,
    settings: PolicySettings,
    /// held while a change is reviewed, stored and swapped in, and while the
    /// engine catches up with the store, so the engine only moves forward
    changing: tokio::sync::Mutex<()>,
}

/// Stops the store-following task when the last handle to the service goes.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug, Clone)]
pub struct PolicyAdminGrpc {
    admin: Arc<PolicyAdministration>,
    _follower: Arc<AbortOnDrop>,
}

impl PolicyAdminGrpc {
    /// Serves policy administration for `core`'s node, and starts following
    /// the store for versions applied by other replicas.
    pub fn new(core: FlagIndexCore, settings: PolicySettings) -> Self {
        let poll_interval = settings.poll_interval;
        let admin = Arc::new(PolicyAdministration {
            core,
            settings,
            changing: tokio::sync::Mutex::new(()),
        });
        let follower = tokio::spawn(follow_store(Arc::downgrade(&admin), poll_interval));
        Self {
            admin,
            _follower: Arc::new(AbortOnDrop(follower)),
        }
    }

    fn core(&self) -> &FlagIndexCore {
        &self.admin.core
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        authenticate_audited(self.core(), request).await
    }

    /// The audit record of one call, labelled until the call says more.
    fn record(&self, caller: &Caller, label: &str) -> AuditRecord {
        let mut record = self
            .core()
            .audit
            .begin(Some(caller), None, AuditAction::PolicyChange, Uuid::new_v4());
        record.incident_id = Some(label.to_owned());
        record
    }

    async fn answer<T>(&self, record: AuditRecord, result: CoreResult<T>) -> Result<Response<T>, Status> {
        self.core()
            .audit
            .conclude(record, result)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    fn require_privacy_officer(&self, caller: &Caller) -> CoreResult<()> {
        self.core().require_own_agency_role(
            caller,
            PRIVACY_OFFICER_ROLE,
            "policy administration is for this agency's privacy officers",
        )
    }
}

fn privacy_officer() -> CoreResult<RoleName> {
    RoleName::parse(PRIVACY_OFFICER_ROLE).map_err(|error| CoreError::Internal(error.to_string()))
}

/// Every poll interval, swaps in a version another replica applied.
async fn follow_store(admin: Weak<PolicyAdministration>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(admin) = admin.upgrade() else {
            return;
        };
        if let Err(error) = admin.catch_up().await {
            tracing::warn!(%error, "cannot follow the stored policy versions");
        }
    }
}

impl PolicyAdministration {
    fn agency(&self) -> &AgencyId {
        &self.core.agency
    }

    /// The policy tests, read afresh, so an updated tests file counts at once.
    async fn policy_tests(&self) -> PolicyTestSet {
        let path = self.settings.tests_file();
        let source = path.display().to_string();
        let cases = match tokio::fs::read_to_string(&path).await {
            Ok(text) => parse_policy_tests(&source, &text).map_err(|error| error.to_string()),
            Err(error) => Err(format!("cannot read the policy tests: {error}")),
        };
        PolicyTestSet { source, cases }
    }

    /// The latest stored version and a snapshot of it: the engine's when it
    /// is that version, otherwise one built now.
    async fn in_force(&self) -> CoreResult<(PolicyVersion, Arc<PolicySnapshot>)> {
        let latest = self
            .core
            .store
            .latest_policy_version(self.agency())
            .await?
            .ok_or_else(|| CoreError::Internal("no policy version is stored".into()))?;
        let engine = self.core.engine.snapshot();
        if engine.stored_version() == Some(latest.version) {
            return Ok((latest, engine));
        }
        let snapshot = self.build(&latest).await?;
        Ok((latest, Arc::new(snapshot)))
    }

    /// A snapshot of a stored version, labelled with it; a stored version
    /// that no longer builds is an internal error (it was checked when stored).
    async fn build(&self, version: &PolicyVersion) -> CoreResult<PolicySnapshot> {
        let rules = RuleSet::from_content(&version.content).map_err(|error| {
            CoreError::Internal(format!(
                "stored policy version {} does not parse: {error}",
                version.version
            ))
        })?;
        let snapshot = PolicySnapshot::build(rules, std::slice::from_ref(self.agency()))
            .await
            .map_err(|error| {
                CoreError::Internal(format!(
                    "stored policy version {} does not build: {error}",
                    version.version
                ))
            })?;
        Ok(snapshot.stored_as(version.version, version.content_hash.clone()))
    }

    /// Swaps in a newer stored version if another replica applied one.
    async fn catch_up(&self) -> CoreResult<()> {
        let _changing = self.changing.lock().await;
        let Some(latest) = self.core.store.latest_policy_version(self.agency()).await? else {
            return Ok(());
        };
        let engine_version = self.core.engine.snapshot().stored_version().unwrap_or(0);
        if latest.version <= engine_version {
            return Ok(());
        }
        let snapshot = self.build(&latest).await?;
        self.core.engine.replace(snapshot);
        tracing::info!(
            version = latest.version,
            "policy version applied elsewhere is now in force here"
        );
        Ok(())
    }

    /// Reviews `candidate` against the version in force.
    async fn review(
        &self,
        current: Arc<PolicySnapshot>,
        base: &PolicyVersion,
        candidate: PolicyContent,
    ) -> ChangeReview {
        let context = ReviewContext {
            current,
            current_hash: base.content_hash.clone(),
            snapshot_agencies: vec![self.agency().clone()],
            impact_agencies: self.settings.impact_agencies.clone(),
            keep_role: privacy_officer().ok().map(|role| (self.agency().clone(), role)),
            tests: Arc::new(self.policy_tests().await),
        };
        review_change(&context, candidate).await
    }

    /// Stores a reviewed change as the version after `base` and swaps its
    /// `snapshot` in, or, under the two-person rule, stores it as a pending
    /// proposal. Call with `changing` held.
    async fn commit(
        &self,
        caller: &Caller,
        base: &PolicyVersion,
        review: &ChangeReview,
        snapshot: PolicySnapshot,
        change_reason: String,
        kind: PolicyChangeKind,
    ) -> CoreResult<Committed> {
        let now = self.core.clock.now();
        let impact_summary = review.impact.summary();
        if self.settings.two_person_rule {
            let proposal = PolicyProposal {
                id: Uuid::new_v4(),
                agency: self.agency().clone(),
                base_version: base.version,
                proposed_by: caller.spiffe_id(),
                proposed_at: now,
                reason: change_reason,
                kind,
                content_hash: review.content_hash.clone(),
                content: review.content.clone(),
                impact_summary,
                closing: None,
            };
            self.core.store.add_policy_proposal(proposal.clone()).await?;
            tracing::info!(proposal = %proposal.id, base = base.version, "policy change pending a second privacy officer");
            return Ok(Committed::Pending(proposal));
        }
        let stored = self
            .core
            .store
            .append_policy_version(NewPolicyVersion {
                agency: self.agency().clone(),
                base_version: base.version,
                author: caller.spiffe_id(),
                created_at: now,
                reason: change_reason,
                kind,
                content: review.content.clone(),
                impact_summary,
                proposal: None,
                approval: None,
            })
            .await?;
        self.core
            .engine
            .replace(snapshot.stored_as(stored.version, stored.content_hash.clone()));
        tracing::info!(version = stored.version, author = %stored.author, "policy version applied");
        Ok(Committed::Applied(stored))
    }
}

/// The stored version the caller expected to change, or `Aborted`.
fn check_expected(latest: &PolicyVersion, expected: u64) -> CoreResult<()> {
    if expected != latest.version {
        return Err(CoreError::Aborted(format!(
            "the policy is at version {}, not {expected}: read it again and re-propose",
            latest.version
        )));
    }
    Ok(())
}

/// A proto change as a policy edit.
fn policy_edit(change: Option<pb::PolicyChange>) -> CoreResult<PolicyEdit> {
    let change = change.ok_or_else(|| CoreError::invalid("change", "is required"))?;
    match change.whole {
        Some(whole) => {
            if !change.add.is_empty() || !change.remove.is_empty() {
                return Err(CoreError::invalid(
                    "change",
                    "give rows to add and remove, or a whole policy, not both",
                ));
            }
            Ok(PolicyEdit::Whole {
                policy: whole.policy_csv,
                roles: whole.roles_csv,
                model: whole.model_conf,
            })
        }
        None => {
            if change.add.is_empty() && change.remove.is_empty() {
                return Err(CoreError::invalid(
                    "change",
                    "add or remove at least one rule, or give a whole policy",
                ));
            }
            Ok(PolicyEdit::Rows {
                add: change.add,
                remove: change.remove,
            })
        }
    }
}

/// The review of an edit that did not even apply to the text.
fn unapplied(base: &PolicyVersion, problems: Vec<String>) -> ChangeReview {
    ChangeReview {
        content: base.content.clone(),
        content_hash: String::new(),
        problems,
        snapshot: None,
        tests: None,
        tests_error: None,
        impact: DecisionImpact::default(),
        rules: RuleDiff::default(),
    }
}

/// What a review did to decisions, in a few words.
fn impact_words(review: &ChangeReview) -> String {
    if review.snapshot.is_none() {
        "invalid".to_owned()
    } else {
        review.impact.summary()
    }
}

fn kind_fields(kind: PolicyChangeKind) -> (String, u64) {
    match kind {
        PolicyChangeKind::Rollback { to } => (kind.as_str().to_owned(), to),
        other => (other.as_str().to_owned(), 0),
    }
}

fn version_message(version: &PolicyVersion, with_text: bool) -> pb::PolicyVersion {
    let (kind, rolled_back_to) = kind_fields(version.kind);
    let approval = version.approval.as_ref();
    pb::PolicyVersion {
        version: version.version,
        base_version: version.base_version,
        author: version.author.clone(),
        created_at: convert::instant_text(version.created_at),
        reason: version.reason.clone(),
        kind,
        rolled_back_to,
        content_hash: version.content_hash.clone(),
        impact_summary: version.impact_summary.clone(),
        proposal_id: version.proposal.map(|id| id.to_string()).unwrap_or_default(),
        approved_by: approval.map(|a| a.by.clone()).unwrap_or_default(),
        approved_at: approval.map(|a| convert::instant_text(a.at)).unwrap_or_default(),
        model_conf: if with_text {
            version.content.model.clone()
        } else {
            String::new()
        },
        policy_csv: if with_text {
            version.content.policy.clone()
        } else {
            String::new()
        },
        roles_csv: if with_text {
            version.content.roles.clone()
        } else {
            String::new()
        },
    }
}

fn rules_message(rules: &RuleDiff) -> pb::RuleChanges {
    pb::RuleChanges {
        added: rules.added.iter().map(|rule| rule.to_line()).collect(),
        removed: rules.removed.iter().map(|rule| rule.to_line()).collect(),
        model_changed: rules.model_changed,
    }
}

fn impact_message(impact: &DecisionImpact) -> pb::Impact {
    let flips = impact
        .flips
        .iter()
        .take(MAX_LISTED_FLIPS)
        .map(|flip| pb::DecisionFlip {
            role: flip.role.to_string(),
            actor_agency: flip.actor.to_string(),
            owner_agency: flip.owner.to_string(),
            purpose: flip.request.purpose().to_owned(),
            field_class: flip.request.object().to_owned(),
            allowed_after: flip.allowed_after,
            summary: flip.to_string(),
        })
        .collect();
    pb::Impact {
        flips,
        gained: impact.gained() as u32,
        lost: impact.lost() as u32,
        compared: impact.compared as u64,
        complete: impact.complete,
        summary: impact.summary(),
        flips_truncated: impact.flips.len() > MAX_LISTED_FLIPS,
    }
}

fn verdict(allowed: bool) -> String {
    if allowed { "allow" } else { "deny" }.to_owned()
}

fn tests_message(review: &ChangeReview, source: &str) -> pb::PolicyTestResults {
    let Some(report) = &review.tests else {
        return pb::PolicyTestResults {
            source: source.to_owned(),
            ran: false,
            error: review
                .tests_error
                .clone()
                .unwrap_or_else(|| "not run: the change is not a valid policy".to_owned()),
            ..Default::default()
        };
    };
    let failures: Vec<pb::PolicyTestFailure> = report
        .failures()
        .iter()
        .map(|failure| {
            let case = &failure.outcome.case;
            pb::PolicyTestFailure {
                line: case.line as u32,
                role: case.role.to_string(),
                actor_agency: case.actor.to_string(),
                owner_agency: case.owner.to_string(),
                field_class: case.request.object().to_owned(),
                purpose: case.request.purpose().to_owned(),
                expected: verdict(case.expected),
                got: verdict(failure.outcome.got),
                message: failure.to_string(),
            }
        })
        .collect();
    pb::PolicyTestResults {
        source: source.to_owned(),
        ran: true,
        rows: report.rows() as u32,
        passed: (report.rows() - failures.len()) as u32,
        failures,
        error: String::new(),
    }
}

fn review_response(base: u64, review: &ChangeReview, tests_source: &str) -> pb::ProposeResponse {
    pb::ProposeResponse {
        base_version: base,
        valid: review.is_valid(),
        problems: review.problems.clone(),
        tests: Some(tests_message(review, tests_source)),
        impact: Some(impact_message(&review.impact)),
        rules: Some(rules_message(&review.rules)),
        content_hash: review.content_hash.clone(),
        applicable: review.refusal().is_none(),
    }
}

/// A pending change as the caller sees it; `latest` tells whether it is stale.
fn pending_message(proposal: &PolicyProposal, rules: &RuleDiff, latest: u64) -> pb::PendingChange {
    let (kind, rolled_back_to) = kind_fields(proposal.kind);
    let closing = proposal.closing.as_ref();
    let (state, close_reason, applied_version) = match closing.map(|closing| &closing.outcome) {
        None if proposal.base_version == latest => ("pending", String::new(), 0),
        None => ("stale", String::new(), 0),
        Some(ProposalOutcome::Approved { version }) => ("approved", String::new(), *version),
        Some(ProposalOutcome::Rejected { reason }) => ("rejected", reason.clone(), 0),
    };
    pb::PendingChange {
        proposal_id: proposal.id.to_string(),
        base_version: proposal.base_version,
        proposed_by: proposal.proposed_by.clone(),
        proposed_at: convert::instant_text(proposal.proposed_at),
        reason: proposal.reason.clone(),
        kind,
        rolled_back_to,
        impact_summary: proposal.impact_summary.clone(),
        rules: Some(rules_message(rules)),
        content_hash: proposal.content_hash.clone(),
        state: state.to_owned(),
        closed_by: closing.map(|c| c.by.clone()).unwrap_or_default(),
        closed_at: closing.map(|c| convert::instant_text(c.at)).unwrap_or_default(),
        close_reason,
        applied_version,
    }
}

/// The rules a proposal adds and removes against its base, if both parse.
fn proposal_rules(base: Option<&PolicyVersion>, proposal: &PolicyProposal) -> RuleDiff {
    let parsed = base.and_then(|base| RuleSet::from_content(&base.content).ok());
    match (parsed, RuleSet::from_content(&proposal.content)) {
        (Some(before), Ok(after)) => rule_diff(&before, &after),
        _ => RuleDiff::default(),
    }
}

fn review_message(item: &ReviewItem) -> pb::ReviewItem {
    let resolution = item.resolution.as_ref();
    pb::ReviewItem {
        review_id: item.id.to_string(),
        request_id: item.request_id.to_string(),
        flag_id: item.flag_id.to_string(),
        actor_agency: item.actor_agency.to_string(),
        actor_user: item.actor_user.to_string(),
        actor_roles: item.actor_roles.iter().map(ToString::to_string).collect(),
        field_classes: item
            .field_classes
            .iter()
            .map(|class| proto_field_class(*class) as i32)
            .collect(),
        reason: item.reason.clone(),
        incident_id: item.incident_id.clone(),
        created_at: convert::instant_text(item.created_at),
        resolved_at: resolution.map(|r| convert::instant_text(r.at)).unwrap_or_default(),
        resolved_by: resolution.map(|r| r.by.clone()).unwrap_or_default(),
        justified: resolution.is_some_and(|r| r.justified),
        note: resolution.map(|r| r.note.clone()).unwrap_or_default(),
    }
}

/// The outcome of an apply, rollback or approval as an answer.
fn applied_response(
    committed: &Committed,
    base: &PolicyVersion,
    review: &ChangeReview,
    tests: &str,
) -> pb::ApplyResponse {
    let review_answer = Some(review_response(base.version, review, tests));
    match committed {
        Committed::Applied(version) => pb::ApplyResponse {
            applied: true,
            version: Some(version_message(version, false)),
            pending: None,
            review: review_answer,
        },
        Committed::Pending(proposal) => pb::ApplyResponse {
            applied: false,
            version: None,
            pending: Some(pending_message(proposal, &review.rules, base.version)),
            review: review_answer,
        },
    }
}

/// What one change is, for its audit line: `policy:{verb} v8{detail}`.
struct ChangeLabel<'a> {
    verb: &'a str,
    /// after the version: ` to v3` for a rollback
    detail: String,
}

impl ChangeLabel<'_> {
    fn committed(&self, committed: &Committed, base: u64, impact: &str, change_reason: &str) -> String {
        let ChangeLabel { verb, detail } = self;
        match committed {
            Committed::Applied(version) => {
                format!("policy:{verb} v{}{detail} ({impact}): {change_reason}", version.version)
            }
            Committed::Pending(proposal) => {
                format!(
                    "policy:{verb} pending {} on v{base}{detail} ({impact}): {change_reason}",
                    proposal.id
                )
            }
        }
    }

    fn refused(&self, base: u64, impact: &str, change_reason: &str) -> String {
        let ChangeLabel { verb, detail } = self;
        format!("policy:{verb} refused on v{base}{detail} ({impact}): {change_reason}")
    }
}

/// One change on its way through the gate.
struct Change<'a> {
    label: ChangeLabel<'a>,
    /// the version in force it changes, and a snapshot of it
    base: &'a PolicyVersion,
    current: Arc<PolicySnapshot>,
    /// the new text, or why the edit did not even apply to the old one
    candidate: Result<PolicyContent, Vec<String>>,
    reason: String,
    kind: PolicyChangeKind,
}

impl PolicyAdminGrpc {
    /// Reviews `candidate` against `base` and commits it unless refused;
    /// the audit line goes into `record`. Call with `changing` held.
    async fn gate_and_commit(
        &self,
        record: &mut AuditRecord,
        caller: &Caller,
        change: Change<'_>,
    ) -> CoreResult<pb::ApplyResponse> {
        let Change {
            label,
            base,
            current,
            candidate,
            reason: change_reason,
            kind,
        } = change;
        let tests_source = self.admin.settings.tests_file().display().to_string();
        let mut review = match candidate {
            Ok(candidate) => self.admin.review(current, base, candidate).await,
            Err(problems) => unapplied(base, problems),
        };
        let impact = impact_words(&review);
        record.incident_id = Some(label.refused(base.version, &impact, &change_reason));
        if let Some(refusal) = review.refusal() {
            return Err(CoreError::FailedPrecondition(format!(
                "{} refused: {refusal}",
                label.verb
            )));
        }
        let Some(snapshot) = review.snapshot.take() else {
            return Err(CoreError::Internal("a reviewed policy has no snapshot".into()));
        };
        let committed = self
            .admin
            .commit(caller, base, &review, snapshot, change_reason.clone(), kind)
            .await?;
        record.incident_id = Some(label.committed(&committed, base.version, &impact, &change_reason));
        Ok(applied_response(&committed, base, &review, &tests_source))
    }
}

impl PolicyAdminGrpc {
    /// A stored version by number, or the one in force for 0.
    async fn version_or_latest(&self, asked: u64) -> CoreResult<PolicyVersion> {
        let store = &self.core().store;
        let agency = &self.core().agency;
        let found = if asked == 0 {
            store.latest_policy_version(agency).await?
        } else {
            store.policy_version(agency, asked).await?
        };
        found.ok_or_else(|| CoreError::NotFound(format!("policy version {asked}")))
    }
}

#[tonic::async_trait]
impl pb::policy_admin_server::PolicyAdmin for PolicyAdminGrpc {
    async fn review_queue(
        &self,
        request: Request<pb::ReviewQueueRequest>,
    ) -> Result<Response<pb::ReviewQueueResponse>, Status> {
        let caller = self.caller(&request).await?;
        let record = self.record(&caller, "policy:review_queue");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let items = self
                .core()
                .store
                .review_items(&self.core().agency, request.get_ref().include_resolved, REVIEW_PAGE)
                .await?;
            Ok(pb::ReviewQueueResponse {
                items: items.iter().map(review_message).collect(),
            })
        }
        .await;
        self.answer(record, result).await
    }

    async fn resolve_review(
        &self,
        request: Request<pb::ResolveReviewRequest>,
    ) -> Result<Response<pb::ReviewItem>, Status> {
        let caller = self.caller(&request).await?;
        let mut record = self.record(&caller, "policy:resolve_review");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let message = request.into_inner();
            let id = parse_uuid("review_id", &message.review_id)?;
            let note = reason("note", &message.note)?;
            let justified = if message.justified {
                "justified"
            } else {
                "not justified"
            };
            record.incident_id = Some(format!("policy:resolve_review {id} {justified}: {note}"));
            let resolution = ReviewResolution {
                at: self.core().clock.now(),
                by: caller.spiffe_id(),
                justified: message.justified,
                note,
            };
            let item = self
                .core()
                .store
                .resolve_review_item(&self.core().agency, id, resolution)
                .await?;
            Ok(review_message(&item))
        }
        .await;
        self.answer(record, result).await
    }

    async fn get_policy(&self, request: Request<pb::GetPolicyRequest>) -> Result<Response<pb::PolicyVersion>, Status> {
        let caller = self.caller(&request).await?;
        let mut record = self.record(&caller, "policy:get");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let version = self.version_or_latest(request.get_ref().version).await?;
            record.incident_id = Some(format!("policy:get v{}", version.version));
            Ok(version_message(&version, true))
        }
        .await;
        self.answer(record, result).await
    }

    async fn propose(&self, request: Request<pb::ProposeRequest>) -> Result<Response<pb::ProposeResponse>, Status> {
        let caller = self.caller(&request).await?;
        let mut record = self.record(&caller, "policy:propose");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let edit = policy_edit(request.into_inner().change)?;
            let (base, current) = self.admin.in_force().await?;
            let review = match apply_edit(&base.content, &edit) {
                Ok(candidate) => self.admin.review(current, &base, candidate).await,
                Err(problems) => unapplied(&base, problems),
            };
            let applicable = if review.refusal().is_none() {
                ""
            } else {
                ", not applicable"
            };
            record.incident_id = Some(format!(
                "policy:propose on v{} ({}){applicable}",
                base.version,
                impact_words(&review)
            ));
            let tests_source = self.admin.settings.tests_file().display().to_string();
            Ok(review_response(base.version, &review, &tests_source))
        }
        .await;
        self.answer(record, result).await
    }

    async fn apply(&self, request: Request<pb::ApplyRequest>) -> Result<Response<pb::ApplyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let mut record = self.record(&caller, "policy:apply");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let message = request.into_inner();
            let change_reason = reason("reason", &message.reason)?;
            if message.expected_version == 0 {
                return Err(CoreError::invalid(
                    "expected_version",
                    "is required: the version the change was made against",
                ));
            }
            let edit = policy_edit(message.change)?;
            let _changing = self.admin.changing.lock().await;
            let (base, current) = self.admin.in_force().await?;
            if let Err(stale) = check_expected(&base, message.expected_version) {
                record.incident_id = Some(format!(
                    "policy:apply refused on v{}, stale (now v{}): {change_reason}",
                    message.expected_version, base.version
                ));
                return Err(stale);
            }
            let candidate = apply_edit(&base.content, &edit);
            let label = ChangeLabel {
                verb: "apply",
                detail: String::new(),
            };
            let change = Change {
                label,
                base: &base,
                current,
                candidate,
                reason: change_reason,
                kind: PolicyChangeKind::Edit,
            };
            self.gate_and_commit(&mut record, &caller, change).await
        }
        .await;
        self.answer(record, result).await
    }

    async fn history(&self, request: Request<pb::HistoryRequest>) -> Result<Response<pb::HistoryResponse>, Status> {
        let caller = self.caller(&request).await?;
        let record = self.record(&caller, "policy:history");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let message = request.into_inner();
            let limit = match message.limit {
                0 => HISTORY_PAGE,
                asked => asked as usize,
            };
            let before = (message.before != 0).then_some(message.before);
            let versions = self
                .core()
                .store
                .policy_history(&self.core().agency, before, limit)
                .await?;
            Ok(pb::HistoryResponse {
                versions: versions.iter().map(|version| version_message(version, false)).collect(),
            })
        }
        .await;
        self.answer(record, result).await
    }

    async fn diff(&self, request: Request<pb::DiffRequest>) -> Result<Response<pb::DiffResponse>, Status> {
        let caller = self.caller(&request).await?;
        let mut record = self.record(&caller, "policy:diff");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let message = request.into_inner();
            if message.from_version == 0 {
                return Err(CoreError::invalid("from_version", "is required"));
            }
            let from = self.version_or_latest(message.from_version).await?;
            let to = self.version_or_latest(message.to_version).await?;
            let before = self.admin.build(&from).await?;
            let after = self.admin.build(&to).await?;
            let impact_agencies = self.admin.settings.impact_agencies.clone();
            let (rules, impact) = tokio::task::spawn_blocking(move || {
                (
                    rule_diff(before.rules(), after.rules()),
                    decision_impact(&before, &after, &impact_agencies),
                )
            })
            .await
            .map_err(|error| CoreError::Internal(format!("comparing policy versions failed: {error}")))?;
            record.incident_id = Some(format!(
                "policy:diff v{}..v{} ({})",
                from.version,
                to.version,
                impact.summary()
            ));
            Ok(pb::DiffResponse {
                from_version: from.version,
                to_version: to.version,
                rules: Some(rules_message(&rules)),
                impact: Some(impact_message(&impact)),
            })
        }
        .await;
        self.answer(record, result).await
    }

    async fn rollback(&self, request: Request<pb::RollbackRequest>) -> Result<Response<pb::ApplyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let mut record = self.record(&caller, "policy:rollback");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let message = request.into_inner();
            let change_reason = reason("reason", &message.reason)?;
            let to = message.to_version;
            if to == 0 {
                return Err(CoreError::invalid("to_version", "is required"));
            }
            let _changing = self.admin.changing.lock().await;
            let (base, current) = self.admin.in_force().await?;
            if message.expected_version != 0
                && let Err(stale) = check_expected(&base, message.expected_version)
            {
                record.incident_id = Some(format!(
                    "policy:rollback refused on v{} to v{to}, stale (now v{}): {change_reason}",
                    message.expected_version, base.version
                ));
                return Err(stale);
            }
            if to >= base.version {
                return Err(CoreError::invalid(
                    "to_version",
                    format!("must be an earlier version than {}, the one in force", base.version),
                ));
            }
            let target = self.version_or_latest(to).await?;
            let label = ChangeLabel {
                verb: "rollback",
                detail: format!(" to v{to}"),
            };
            let change = Change {
                label,
                base: &base,
                current,
                candidate: Ok(target.content),
                reason: change_reason,
                kind: PolicyChangeKind::Rollback { to },
            };
            self.gate_and_commit(&mut record, &caller, change).await
        }
        .await;
        self.answer(record, result).await
    }

    async fn list_pending(
        &self,
        request: Request<pb::ListPendingRequest>,
    ) -> Result<Response<pb::ListPendingResponse>, Status> {
        let caller = self.caller(&request).await?;
        let record = self.record(&caller, "policy:pending");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let store = &self.core().store;
            let agency = &self.core().agency;
            let latest = self.version_or_latest(0).await?;
            let proposals = store
                .policy_proposals(agency, request.get_ref().include_closed, PENDING_PAGE)
                .await?;
            let mut bases: Vec<PolicyVersion> = Vec::new();
            let mut changes = Vec::with_capacity(proposals.len());
            for proposal in &proposals {
                if !bases.iter().any(|base| base.version == proposal.base_version)
                    && let Some(base) = store.policy_version(agency, proposal.base_version).await?
                {
                    bases.push(base);
                }
                let base = bases.iter().find(|base| base.version == proposal.base_version);
                changes.push(pending_message(
                    proposal,
                    &proposal_rules(base, proposal),
                    latest.version,
                ));
            }
            Ok(pb::ListPendingResponse { changes })
        }
        .await;
        self.answer(record, result).await
    }

    async fn approve(&self, request: Request<pb::ApproveRequest>) -> Result<Response<pb::ApplyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let mut record = self.record(&caller, "policy:approve");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let id = parse_uuid("proposal_id", &request.get_ref().proposal_id)?;
            record.incident_id = Some(format!("policy:approve refused {id}"));
            let _changing = self.admin.changing.lock().await;
            let store = &self.core().store;
            let agency = &self.core().agency;
            let proposal = store
                .policy_proposal(agency, id)
                .await?
                .ok_or_else(|| CoreError::NotFound("policy proposal".into()))?;
            if let Some(closing) = &proposal.closing {
                let how = match &closing.outcome {
                    ProposalOutcome::Approved { version } => format!("approved as version {version}"),
                    ProposalOutcome::Rejected { .. } => "rejected".to_owned(),
                };
                return Err(CoreError::FailedPrecondition(format!("the proposal was already {how}")));
            }
            if proposal.proposed_by == caller.spiffe_id() {
                return Err(CoreError::PermissionDenied(
                    "the two-person rule needs a second privacy officer: you proposed this change".into(),
                ));
            }
            let (base, current) = self.admin.in_force().await?;
            if proposal.base_version != base.version {
                return Err(CoreError::Aborted(format!(
                    "the policy moved to version {} since this change was proposed on version {}; reject it and \
                     propose it again",
                    base.version, proposal.base_version
                )));
            }
            let mut review = self.admin.review(current, &base, proposal.content.clone()).await;
            let impact = impact_words(&review);
            record.incident_id = Some(format!("policy:approve refused {id} on v{} ({impact})", base.version));
            if let Some(refusal) = review.refusal() {
                return Err(CoreError::FailedPrecondition(format!("approve refused: {refusal}")));
            }
            let Some(snapshot) = review.snapshot.take() else {
                return Err(CoreError::Internal("a reviewed policy has no snapshot".into()));
            };
            let approval = PolicyApproval {
                by: caller.spiffe_id(),
                at: self.core().clock.now(),
            };
            let stored = store.approve_policy_proposal(agency, id, approval).await?;
            self.core()
                .engine
                .replace(snapshot.stored_as(stored.version, stored.content_hash.clone()));
            tracing::info!(version = stored.version, proposal = %id, "pending policy change approved and applied");
            record.incident_id = Some(format!(
                "policy:approve {id} as v{} ({impact}): {}",
                stored.version, proposal.reason
            ));
            let tests_source = self.admin.settings.tests_file().display().to_string();
            Ok(applied_response(
                &Committed::Applied(stored),
                &base,
                &review,
                &tests_source,
            ))
        }
        .await;
        self.answer(record, result).await
    }

    async fn reject(&self, request: Request<pb::RejectRequest>) -> Result<Response<pb::PendingChange>, Status> {
        let caller = self.caller(&request).await?;
        let mut record = self.record(&caller, "policy:reject");
        let result = async {
            self.require_privacy_officer(&caller)?;
            let message = request.into_inner();
            let id = parse_uuid("proposal_id", &message.proposal_id)?;
            let rejection = reason("reason", &message.reason)?;
            record.incident_id = Some(format!("policy:reject {id}: {rejection}"));
            let store = &self.core().store;
            let agency = &self.core().agency;
            let closing = ProposalClosing {
                by: caller.spiffe_id(),
                at: self.core().clock.now(),
                outcome: ProposalOutcome::Rejected { reason: rejection },
            };
            let closed = store.reject_policy_proposal(agency, id, closing).await?;
            let latest = self.version_or_latest(0).await?;
            let base = store.policy_version(agency, closed.base_version).await?;
            Ok(pending_message(
                &closed,
                &proposal_rules(base.as_ref(), &closed),
                latest.version,
            ))
        }
        .await;
        self.answer(record, result).await
    }
}
