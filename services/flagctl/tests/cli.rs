//! flagctl as a person runs it: the real binary against a real sandbox
//! federation, reading the profiles the sandbox wrote.

use flagnet_sandbox::{Sandbox, SandboxOptions, seed_demo};
use std::path::Path;
use std::process::{Command, Output};

fn flagctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flagctl"))
        .args(args)
        .env_remove("FLAGCTL_PROFILE")
        .output()
        .expect("flagctl runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn profile(sandbox: &Sandbox, role: &str) -> String {
    sandbox.profile_path("phelps-so", role).display().to_string()
}

const LOOKUP: [&str; 6] = [
    "--phone",
    "(573) 555-0142",
    "--purpose",
    "emergency_response",
    "--incident",
    "CAD-2026-0001",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_sees_the_seeded_flag_with_clinical_withheld() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec!["phelps-so".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    seed_demo(&sandbox).await.unwrap();
    let dispatcher = profile(&sandbox, "dispatcher");

    let output = tokio::task::spawn_blocking({
        let dispatcher = dispatcher.clone();
        move || flagctl(&[&["--profile", &dispatcher, "lookup"][..], &LOOKUP[..]].concat())
    })
    .await
    .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("match 1 of 1: phelps-so"), "{stdout}");
    assert!(stdout.contains("send: CIT officer"), "{stdout}");
    assert!(stdout.contains("withheld (policy)"), "{stdout}");
    assert!(
        !stdout.contains("Phelps Health crisis unit"),
        "the crisis plan is clinical: {stdout}"
    );

    let output = tokio::task::spawn_blocking({
        let dispatcher = dispatcher.clone();
        move || flagctl(&[&["--profile", &dispatcher, "--json", "lookup"][..], &LOOKUP[..]].concat())
    })
    .await
    .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let found = &answer["matches"][0];
    assert!(found["clinical"].is_null());
    assert_eq!(found["presence"]["owner_agency"], "phelps-so");
    assert!(
        found["withheld"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["field_class"] == "clinical" && w["reason"] == "policy")
    );

    let liaison = profile(&sandbox, "liaison");
    let output = tokio::task::spawn_blocking(move || {
        flagctl(&[
            "--profile",
            &liaison,
            "lookup",
            "--phone",
            "573.555.0142",
            "--purpose",
            "crisis_followup",
            "--incident",
            "CAD-2",
        ])
    })
    .await
    .unwrap();
    assert!(
        text(&output).0.contains("Phelps Health crisis unit"),
        "a liaison sees the crisis plan"
    );

    // a records clerk lists flags; a dispatcher is told no, with the node's reason
    let clerk = profile(&sandbox, "records_clerk");
    let output = tokio::task::spawn_blocking(move || flagctl(&["--profile", &clerk, "--json", "flag", "list"]))
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(listed["flags"].as_array().unwrap().len(), 5);
    let output = tokio::task::spawn_blocking(move || flagctl(&["--profile", &dispatcher, "flag", "list"]))
        .await
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr.contains("PermissionDenied") && stderr.contains("records_clerk"),
        "{stderr}"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_to_fix() {
    let output = flagctl(&[&["lookup"][..], &LOOKUP[..]].concat());
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("--profile"), "{}", text(&output).1);

    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec!["phelps-so".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // a profile whose certificate comes from a CA the node does not trust
    let foreign = tempfile::tempdir().unwrap();
    let other = flagnet_trust::FederationDir::init(foreign.path(), sandbox.federation().federation()).unwrap();
    let agency = flagnet_core::AgencyId::parse("phelps-so").unwrap();
    other.add_agency(&agency).unwrap();
    let impostor = other
        .issue_user(&agency, &flagnet_core::UserId::parse("dispatcher1").unwrap(), None)
        .unwrap();
    let original = std::fs::read_to_string(sandbox.profile_path("phelps-so", "dispatcher")).unwrap();
    let mut profile: flagnet_trust::client::ClientProfile = toml::from_str(&original).unwrap();
    profile.certificate = impostor.cert_path.clone();
    profile.private_key = impostor.key_path.clone();
    let impostor_profile = foreign.path().join("impostor.toml");
    std::fs::write(&impostor_profile, toml::to_string(&profile).unwrap()).unwrap();
    let path = impostor_profile.display().to_string();
    let output =
        tokio::task::spawn_blocking(move || flagctl(&[&["--profile", &path, "lookup"][..], &LOOKUP[..]].concat()))
            .await
            .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(&impostor.cert_path.display().to_string()),
        "names the certificate: {stderr}"
    );

    let missing = Path::new("/nonexistent/profile.toml").display().to_string();
    let output = flagctl(&[&["--profile", &missing, "lookup"][..], &LOOKUP[..]].concat());
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("/nonexistent/profile.toml"));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encounter_reported_at_pulaski_appears_in_a_phelps_liaisons_watch() {
    use std::io::BufRead;
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec!["phelps-so".into(), "pulaski-so".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let subjects = seed_demo(&sandbox).await.unwrap();
    let flag_id = subjects
        .iter()
        .find(|s| s.agency == "phelps-so")
        .unwrap()
        .flag_id
        .clone();
    let liaison = sandbox.profile_path("phelps-so", "liaison");
    let officer = sandbox.profile_path("pulaski-so", "officer").display().to_string();

    let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_flagctl"))
        .args(["--profile", &liaison.display().to_string(), "--json", "alerts", "watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (line_sender, line_receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_sender.send(line).is_err() {
                return;
            }
        }
    });
    let report = tokio::task::spawn_blocking(move || {
        flagctl(&[
            "--profile",
            &officer,
            "encounter",
            "report",
            "--flag",
            &flag_id,
            "--owner",
            "phelps-so",
            "--location",
            "Waynesville",
            "--disposition",
            "resolved on scene",
            "--incident",
            "PCSO-1",
        ])
    })
    .await
    .unwrap();
    let (stdout, stderr) = text(&report);
    assert!(report.status.success(), "{stderr}");
    assert!(stdout.contains("delivered to phelps-so"), "{stdout}");
    let line = tokio::task::spawn_blocking(move || line_receiver.recv_timeout(std::time::Duration::from_secs(15)))
        .await
        .unwrap()
        .expect("the watch prints the alert");
    let alert: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(alert["disposition"], "resolved on scene");
    assert_eq!(alert["reporter"], "pulaski-so/officer1");
    let _ = watch.kill();
    let _ = watch.wait();
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_searches_verifies_and_exports() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec!["phelps-so".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    seed_demo(&sandbox).await.unwrap();
    let dispatcher = profile(&sandbox, "dispatcher");
    let auditor = profile(&sandbox, "auditor");
    let export = sandbox.dir().join("export.jsonl");
    let export_path = export.display().to_string();
    let outputs = tokio::task::spawn_blocking(move || {
        let lookup = flagctl(&[&["--profile", &dispatcher, "lookup"][..], &LOOKUP[..]].concat());
        let search = flagctl(&[
            "--profile",
            &auditor,
            "--json",
            "audit",
            "search",
            "--phone",
            "573-555-0142",
            "--action",
            "lookup",
        ]);
        let accounting = flagctl(&["--profile", &auditor, "audit", "disclosures", "--phone", "573 555 0142"]);
        let verify = flagctl(&["--profile", &auditor, "audit", "verify"]);
        let exported = flagctl(&["--profile", &auditor, "audit", "export", "--output", &export_path]);
        let refused = flagctl(&["--profile", &dispatcher, "audit", "verify"]);
        (lookup, search, accounting, verify, exported, refused)
    })
    .await
    .unwrap();
    let (lookup, search, accounting, verify, exported, refused) = outputs;
    assert!(lookup.status.success());
    let found: serde_json::Value = serde_json::from_slice(&search.stdout).expect("json");
    let records = found["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{found}");
    assert_eq!(records[0]["record"]["actor_user"], "dispatcher1");
    assert!(
        text(&accounting).0.contains("phelps-so/dispatcher1"),
        "{}",
        text(&accounting).0
    );
    assert!(
        verify.status.success() && text(&verify).0.contains("the log verifies"),
        "{}",
        text(&verify).0
    );
    assert!(exported.status.success(), "{}", text(&exported).1);
    let lines = std::fs::read_to_string(&export).unwrap();
    assert!(lines.lines().count() > 10);
    for line in lines.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert!(value["record"]["action"].is_string());
    }
    assert_eq!(refused.status.code(), Some(3));
    assert!(text(&refused).1.contains("auditors"), "{}", text(&refused).1);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privacy_officer_previews_applies_and_rolls_back_a_policy_edit() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec!["phelps-so".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let officer = profile(&sandbox, "privacy_officer");
    let dispatcher = profile(&sandbox, "dispatcher");
    let outputs = tokio::task::spawn_blocking(move || {
        let policy = |args: &[&str]| flagctl(&[&["--profile", &officer, "policy"][..], args].concat());
        let breaking = [
            "--add",
            "p, dispatcher, south-central-mo, south-central-mo, safety, emergency_response, allow",
        ];
        let harmless = [
            "--add",
            "g, dispatcher1, co_responder, phelps-so",
            "--add",
            "p, co_responder, any, same, safety, emergency_response, allow",
        ];
        let preview = policy(&[&["propose"][..], &breaking[..]].concat());
        let refused = policy(
            &[
                &["apply", "--expected-version", "1", "--reason", "neighbours"][..],
                &breaking[..],
            ]
            .concat(),
        );
        let applied = policy(
            &[
                &["apply", "--expected-version", "1", "--reason", "co-responders"][..],
                &harmless[..],
            ]
            .concat(),
        );
        let stale = policy(
            &[
                &["apply", "--expected-version", "1", "--reason", "again"][..],
                &harmless[..],
            ]
            .concat(),
        );
        let history = policy(&["history"]);
        let diff = policy(&["--json", "diff", "1", "2"]);
        let rollback = policy(&[
            "rollback",
            "--to",
            "1",
            "--reason",
            "pilot over",
            "--expected-version",
            "2",
        ]);
        let show = policy(&["--json", "show"]);
        let denied = flagctl(&["--profile", &dispatcher, "policy", "show"]);
        (preview, refused, applied, stale, history, diff, rollback, show, denied)
    })
    .await
    .unwrap();
    let (preview, refused, applied, stale, history, diff, rollback, show, denied) = outputs;

    let (stdout, stderr) = text(&preview);
    assert!(preview.status.success(), "{stderr}");
    for expected in [
        "rolla-pd dispatcher",
        "gains `safety`",
        "on phelps-so flags",
        "for emergency_response",
        "2 failed",
        "FAIL line 181: dispatcher at rolla-pd asking for safety",
        "not applicable",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }
    assert_eq!(refused.status.code(), Some(3));
    assert!(text(&refused).1.contains("FailedPrecondition"), "{}", text(&refused).1);
    let (stdout, stderr) = text(&applied);
    assert!(applied.status.success(), "{stderr}");
    assert!(stdout.contains("applied: version 2 is in force"), "{stdout}");
    assert!(stdout.contains("phelps-so co_responder"), "{stdout}");
    assert_eq!(stale.status.code(), Some(3));
    assert!(
        text(&stale).1.contains("Aborted") && text(&stale).1.contains("version 2"),
        "{}",
        text(&stale).1
    );
    let (stdout, _) = text(&history);
    assert!(stdout.contains("co-responders") && stdout.contains("seed"), "{stdout}");
    let diff: serde_json::Value = serde_json::from_slice(&diff.stdout).expect("json");
    assert_eq!(diff["impact"]["summary"], "+4/-0 decisions");
    assert_eq!(diff["impact"]["flips"][0]["change"], "gains");
    let (stdout, stderr) = text(&rollback);
    assert!(rollback.status.success(), "{stderr}");
    assert!(
        stdout.contains("applied: version 3") && stdout.contains("loses `safety`"),
        "{stdout}"
    );
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    assert_eq!(shown["version"], 3);
    assert_eq!(shown["kind"], "rollback");
    assert!(!shown["policy_csv"].as_str().unwrap().contains("co_responder"));
    assert_eq!(denied.status.code(), Some(3));
    assert!(text(&denied).1.contains("PermissionDenied"), "{}", text(&denied).1);
    sandbox.shutdown().await;
}
