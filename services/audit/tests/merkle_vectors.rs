//! The RFC 6962 hashing, tree heads, inclusion and consistency proofs
//! against the published transparency-dev/merkle test vectors (the same
//! eight leaves as certificate-transparency-go's), kept as data in
//! `tests/fixtures/`. Each good proof must be built exactly, must verify,
//! and must stop verifying under the corruptions transparency-dev's own
//! verifier tests apply.

use flagnet_audit::Hash;
use flagnet_audit::merkle::{
    EMPTY_ROOT, Frontier, consistency_proof, inclusion_proof, leaf_hash, node_hash, root, root_from_inclusion_proof,
    verify_consistency, verify_inclusion,
};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn hash(text: &Value) -> Hash {
    hex::decode(text.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn bytes(text: &Value) -> Vec<u8> {
    hex::decode(text.as_str().unwrap()).unwrap()
}

struct Tree {
    leaves: Vec<Hash>,
    roots: Vec<Hash>,
    nodes: Vec<Vec<Hash>>,
}

fn tree() -> Tree {
    let tree = fixture("tree.json");
    Tree {
        leaves: tree["leaves_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(|leaf| leaf_hash(&bytes(leaf)))
            .collect(),
        roots: tree["roots_by_size"].as_array().unwrap().iter().map(hash).collect(),
        nodes: tree["node_hashes_by_level"]
            .as_array()
            .unwrap()
            .iter()
            .map(|level| level.as_array().unwrap().iter().map(hash).collect())
            .collect(),
    }
}

impl Tree {
    /// A proof from the fixture, given either as hashes or as node ids.
    fn proof(&self, entry: &Value) -> Vec<Hash> {
        if let Some(hashes) = entry.get("hashes") {
            return hashes.as_array().unwrap().iter().map(hash).collect();
        }
        entry["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| {
                let (level, index) = id.as_str().unwrap().split_once('.').unwrap();
                self.nodes[level.parse::<usize>().unwrap()][index.parse::<usize>().unwrap()]
            })
            .collect()
    }
}

fn u64_of(entry: &Value, key: &str) -> u64 {
    entry[key].as_u64().unwrap()
}

#[test]
fn hasher_matches_the_rfc6962_vectors() {
    let vectors = fixture("rfc6962_hasher.json");
    assert_eq!(EMPTY_ROOT, hash(&vectors["empty_root"]));
    assert_eq!(root(&[]), EMPTY_ROOT);
    for vector in vectors["leaf_hashes"].as_array().unwrap() {
        assert_eq!(leaf_hash(&bytes(&vector["data_hex"])), hash(&vector["hash"]));
    }
    for vector in vectors["node_hashes"].as_array().unwrap() {
        let computed = node_hash(&bytes(&vector["left_hex"]), &bytes(&vector["right_hex"]));
        assert_eq!(computed, hash(&vector["hash"]));
    }
    // the empty tree's root is not the hash of an empty leaf
    assert_ne!(EMPTY_ROOT, leaf_hash(b""));
}

#[test]
fn roots_of_every_size_including_odd_ones_match() {
    let tree = tree();
    assert_eq!(tree.roots.len(), 9);
    let mut frontier = Frontier::new();
    assert_eq!(frontier.root(), tree.roots[0]);
    for size in 1..=8 {
        assert_eq!(
            root(&tree.leaves[..size]),
            tree.roots[size],
            "recursive root of size {size}"
        );
        frontier.push(tree.leaves[size - 1]);
        assert_eq!(frontier.root(), tree.roots[size], "frontier root of size {size}");
    }
    // odd sizes: the last node is promoted, never duplicated
    for odd in [3, 5, 7] {
        let duplicated: Vec<Hash> = tree.leaves[..odd]
            .iter()
            .chain([&tree.leaves[odd - 1]])
            .copied()
            .collect();
        assert_ne!(
            root(&duplicated),
            tree.roots[odd],
            "size {odd} must not duplicate its last leaf"
        );
    }
}

#[test]
fn complete_subtree_hashes_match() {
    let tree = tree();
    assert_eq!(tree.nodes[0], tree.leaves, "level 0 is the leaf hashes");
    for (level, hashes) in tree.nodes.iter().enumerate() {
        let width = 1 << level;
        for (index, expected) in hashes.iter().enumerate() {
            let leaves = &tree.leaves[index * width..(index + 1) * width];
            assert_eq!(&root(leaves), expected, "node {level}.{index}");
        }
    }
}

#[test]
fn inclusion_proofs_are_built_exactly_and_verify() {
    let tree = tree();
    let vectors = fixture("inclusion_proofs.json");
    let proofs = vectors["proofs"].as_array().unwrap();
    assert!(proofs.len() >= 15);
    for entry in proofs {
        let index = u64_of(entry, "leaf_index");
        let size = u64_of(entry, "tree_size");
        let expected = tree.proof(entry);
        let leaves = &tree.leaves[..size as usize];
        let leaf = tree.leaves[index as usize];
        let tree_root = tree.roots[size as usize];
        assert_eq!(
            inclusion_proof(leaves, index).unwrap(),
            expected,
            "built proof {index}@{size}"
        );
        assert_eq!(
            root_from_inclusion_proof(index, size, &leaf, &expected).unwrap(),
            tree_root
        );
        verify_inclusion(index, size, &leaf, &expected, &tree_root).unwrap();
        for (what, probe) in corrupt_inclusion(index, size, &expected, &tree_root, &leaf) {
            assert!(
                verify_inclusion(probe.index, probe.size, &probe.leaf, &probe.proof, &probe.root).is_err(),
                "proof {index}@{size} verified after: {what}"
            );
        }
    }
}

#[test]
fn consistency_proofs_are_built_exactly_and_verify() {
    let tree = tree();
    let vectors = fixture("consistency_proofs.json");
    let proofs = vectors["proofs"].as_array().unwrap();
    assert!(proofs.len() >= 20);
    for entry in proofs {
        let old = u64_of(entry, "old_size");
        let new = u64_of(entry, "new_size");
        let expected = tree.proof(entry);
        let (old_root, new_root) = (tree.roots[old as usize], tree.roots[new as usize]);
        assert_eq!(
            consistency_proof(&tree.leaves[..new as usize], old).unwrap(),
            expected,
            "built proof {old}->{new}"
        );
        verify_consistency(old, new, &old_root, &new_root, &expected).unwrap();
        if expected.is_empty() {
            continue;
        }
        for (what, probe) in corrupt_consistency(old, new, &old_root, &new_root, &expected) {
            assert!(
                verify_consistency(probe.old, probe.new, &probe.old_root, &probe.new_root, &probe.proof).is_err(),
                "proof {old}->{new} verified after: {what}"
            );
        }
    }
}

#[test]
fn consistency_edge_cases_follow_transparency_dev() {
    let (one, two) = ([1u8; 32], [2u8; 32]);
    // sizes that are always consistent
    verify_consistency(0, 0, &one, &one, &[]).unwrap();
    verify_consistency(0, 1, &one, &two, &[]).unwrap();
    verify_consistency(1, 1, &two, &two, &[]).unwrap();
    // equal sizes with different roots, time travel, empty proofs, stray hashes
    assert!(verify_consistency(1, 1, &one, &two, &[]).is_err());
    assert!(verify_consistency(1, 0, &one, &two, &[]).is_err());
    assert!(verify_consistency(2, 1, &one, &two, &[]).is_err());
    assert!(verify_consistency(1, 2, &one, &two, &[]).is_err());
    assert!(verify_consistency(0, 1, &EMPTY_ROOT, &EMPTY_ROOT, &[EMPTY_ROOT]).is_err());
    assert!(verify_consistency(1, 1, &EMPTY_ROOT, &EMPTY_ROOT, &[EMPTY_ROOT]).is_err());
    // inclusion in trees too small to hold the leaf
    for (index, size) in [(0, 0), (1, 0), (2, 1)] {
        assert!(verify_inclusion(index, size, &one, &[], &EMPTY_ROOT).is_err());
    }
}

struct InclusionProbe {
    index: u64,
    size: u64,
    leaf: Hash,
    root: Hash,
    proof: Vec<Hash>,
}

const SOME_HASH: Hash = [
    0xab, 0xac, 0xab, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x60, 0x06, 0x1e, 0, 0x12,
    0x34, 0x56,
];

fn flipped(proof: &[Hash], at: usize, bit: u8) -> Vec<Hash> {
    let mut proof = proof.to_vec();
    proof[at][0] ^= bit;
    proof
}

/// transparency-dev `corruptInclusionProof`, less the probes a typed
/// 32-byte hash cannot express (empty-slice garbage).
fn corrupt_inclusion(index: u64, size: u64, proof: &[Hash], root: &Hash, leaf: &Hash) -> Vec<(String, InclusionProbe)> {
    let probe = |index: u64, size: u64, leaf: Hash, root: Hash, proof: Vec<Hash>| InclusionProbe {
        index,
        size,
        leaf,
        root,
        proof,
    };
    let mut probes = vec![
        (
            "leaf index + 1".to_owned(),
            probe(index + 1, size, *leaf, *root, proof.to_vec()),
        ),
        (
            "leaf index ^ 2".to_owned(),
            probe(index ^ 2, size, *leaf, *root, proof.to_vec()),
        ),
        (
            "tree size * 2".to_owned(),
            probe(index, size * 2, *leaf, *root, proof.to_vec()),
        ),
        (
            "tree size / 2".to_owned(),
            probe(index, size / 2, *leaf, *root, proof.to_vec()),
        ),
        (
            "wrong leaf".to_owned(),
            probe(index, size, leaf_hash(b"WrongLeaf"), *root, proof.to_vec()),
        ),
        (
            "empty root".to_owned(),
            probe(index, size, *leaf, EMPTY_ROOT, proof.to_vec()),
        ),
        (
            "random root".to_owned(),
            probe(index, size, *leaf, SOME_HASH, proof.to_vec()),
        ),
        (
            "trailing root".to_owned(),
            probe(index, size, *leaf, *root, proof.iter().chain([root]).copied().collect()),
        ),
        (
            "preceding root".to_owned(),
            probe(
                index,
                size,
                *leaf,
                *root,
                [root].into_iter().chain(proof).copied().collect(),
            ),
        ),
    ];
    if let Some(before) = index.checked_sub(1) {
        probes.push((
            "leaf index - 1".to_owned(),
            probe(before, size, *leaf, *root, proof.to_vec()),
        ));
    }
    for at in 0..proof.len() {
        probes.push((
            format!("modified proof[{at}] bit 3"),
            probe(index, size, *leaf, *root, flipped(proof, at, 8)),
        ));
    }
    if !proof.is_empty() {
        probes.push((
            "removed component".to_owned(),
            probe(index, size, *leaf, *root, proof[..proof.len() - 1].to_vec()),
        ));
    }
    if proof.len() > 1 {
        let inserted = [proof[0], SOME_HASH]
            .into_iter()
            .chain(proof[1..].iter().copied())
            .collect();
        probes.push((
            "inserted component".to_owned(),
            probe(index, size, *leaf, *root, inserted),
        ));
    }
    probes
}

struct ConsistencyProbe {
    old: u64,
    new: u64,
    old_root: Hash,
    new_root: Hash,
    proof: Vec<Hash>,
}

/// transparency-dev `corruptConsistencyProof`, less the empty-slice garbage.
fn corrupt_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Vec<(String, ConsistencyProbe)> {
    let probe = |old: u64, new: u64, old_root: Hash, new_root: Hash, proof: Vec<Hash>| ConsistencyProbe {
        old,
        new,
        old_root,
        new_root,
        proof,
    };
    let wrong = leaf_hash(b"WrongRoot");
    let with_tail = |extra: &Hash| proof.iter().chain([extra]).copied().collect::<Vec<_>>();
    let with_head = |extra: &Hash| [extra].into_iter().chain(proof).copied().collect::<Vec<_>>();
    let mut probes = vec![
        (
            "size1 - 1".to_owned(),
            probe(old - 1, new, *old_root, *new_root, proof.to_vec()),
        ),
        (
            "size1 + 1".to_owned(),
            probe(old + 1, new, *old_root, *new_root, proof.to_vec()),
        ),
        (
            "size1 ^ 2".to_owned(),
            probe(old ^ 2, new, *old_root, *new_root, proof.to_vec()),
        ),
        (
            "size2 * 2".to_owned(),
            probe(old, new * 2, *old_root, *new_root, proof.to_vec()),
        ),
        (
            "size2 / 2".to_owned(),
            probe(old, new / 2, *old_root, *new_root, proof.to_vec()),
        ),
        (
            "wrong root1".to_owned(),
            probe(old, new, wrong, *new_root, proof.to_vec()),
        ),
        (
            "wrong root2".to_owned(),
            probe(old, new, *old_root, wrong, proof.to_vec()),
        ),
        (
            "swapped roots".to_owned(),
            probe(old, new, *new_root, *old_root, proof.to_vec()),
        ),
        (
            "empty proof".to_owned(),
            probe(old, new, *old_root, *new_root, Vec::new()),
        ),
        (
            "trailing root1".to_owned(),
            probe(old, new, *old_root, *new_root, with_tail(old_root)),
        ),
        (
            "trailing root2".to_owned(),
            probe(old, new, *old_root, *new_root, with_tail(new_root)),
        ),
        (
            "preceding root1".to_owned(),
            probe(old, new, *old_root, *new_root, with_head(old_root)),
        ),
        (
            "preceding root2".to_owned(),
            probe(old, new, *old_root, *new_root, with_head(new_root)),
        ),
        (
            "preceding proof[0]".to_owned(),
            probe(old, new, *old_root, *new_root, with_head(&proof[0])),
        ),
        (
            "truncated proof".to_owned(),
            probe(old, new, *old_root, *new_root, proof[..proof.len() - 1].to_vec()),
        ),
    ];
    for at in 0..proof.len() {
        probes.push((
            format!("modified proof[{at}] bit 4"),
            probe(old, new, *old_root, *new_root, flipped(proof, at, 16)),
        ));
    }
    probes
}
