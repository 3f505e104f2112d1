//! The compiled decision index against casbin-rs on random policies: every
//! role, agency, region and purpose × every field class, one role at a time.
//! Roles inherit in chains, regions nest, rules use `any`, `same`, agencies
//! and regions on both sides, and deny rules cross allow rules.

use flagnet_policy::{PolicySnapshot, RuleSet, parse_rules};

const MODEL: &str = include_str!("../../../policies/model.conf");
const CLASSES: [&str; 6] = ["presence", "response", "safety", "contacts", "clinical", "identity"];
const PURPOSES: [&str; 4] = [
    "emergency_response",
    "welfare_check",
    "crisis_followup",
    "emergency_override",
];

/// A small deterministic generator (xorshift64*), so a failure names its seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len())]
    }
}

fn random_policy(seed: u64) -> String {
    let mut random = Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let roles = ["r0", "r1", "r2", "r3"];
    let agencies = ["a0", "a1", "a2"];
    let regions = ["region0", "region1"];
    let mut text = String::new();
    for (index, role) in roles.iter().enumerate().skip(1) {
        if random.below(2) == 0 {
            let parent = roles[random.below(index)];
            text.push_str(&format!("g3, {role}, {parent}\n"));
        }
    }
    for agency in agencies {
        for region in regions {
            if random.below(2) == 0 {
                text.push_str(&format!("g2, {agency}, {region}\n"));
            }
        }
    }
    if random.below(2) == 0 {
        text.push_str("g2, region0, region1\n");
    }
    let actors = ["any", "a0", "a1", "a2", "region0", "region1"];
    let owners = ["any", "same", "a0", "a1", "a2", "region0", "region1"];
    for _ in 0..24 {
        let effect = if random.below(4) == 0 { "deny" } else { "allow" };
        text.push_str(&format!(
            "p, {}, {}, {}, {}, {}, {effect}\n",
            random.pick(&roles),
            random.pick(&actors),
            random.pick(&owners),
            random.pick(&CLASSES),
            random.pick(&PURPOSES)
        ));
    }
    for _ in 0..2 {
        text.push_str(&format!(
            "p, {}, {}, {}, flag_records, records_maintenance, allow\n",
            random.pick(&roles),
            random.pick(&actors),
            random.pick(&owners)
        ));
    }
    text
}

async fn check_seeds(seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let text = random_policy(seed);
        let rules = RuleSet {
            model: MODEL.to_owned(),
            rules: parse_rules("random", &text).unwrap(),
        };
        let snapshot = PolicySnapshot::build(rules, &[]).await.unwrap();
        assert!(snapshot.is_compiled());
        let agreement = snapshot.verify_against_casbin(usize::MAX);
        assert!(
            agreement.disagreements.is_empty(),
            "seed {seed}:\n{text}\n{}",
            agreement.disagreements.join("\n")
        );
        assert_eq!(agreement.skipped, 0);
    }
}

#[tokio::test]
async fn compiled_decisions_equal_casbin_on_random_policies_0_to_4() {
    check_seeds(0..4).await;
}

#[tokio::test]
async fn compiled_decisions_equal_casbin_on_random_policies_4_to_8() {
    check_seeds(4..8).await;
}

#[tokio::test]
async fn compiled_decisions_equal_casbin_on_random_policies_8_to_12() {
    check_seeds(8..12).await;
}
