//! RFC 6962 Merkle tree hashing over the log's entries: leaf
//! `SHA-256(0x00 ‖ d)`, node `SHA-256(0x01 ‖ left ‖ right)`, a tree of `n > 1`
//! leaves split at the largest power of two smaller than `n`, and never a
//! duplicated last node. Proofs are built as RFC 6962 §2.1 describes and
//! verified with the RFC 9162 §2.1.3/§2.1.4 algorithms, so building and
//! checking do not share code.
//!
//! This module must never accept a proof it cannot fully account for:
//! leftover or missing hashes are a failure, not a warning.

use crate::error::AuditError;
use sha2::{Digest, Sha256};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The hash of a leaf whose data is `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The hash of an interior node over its children's hashes.
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two smaller than `n` (`n > 1`).
fn split_point(n: usize) -> usize {
    debug_assert!(n > 1, "only trees of two or more leaves split");
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle tree hash (MTH) of the tree whose leaf hashes are `leaves`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

fn to_usize(value: u64, field: &str) -> Result<usize, AuditError> {
    usize::try_from(value).map_err(|_| AuditError::invalid(field, "too large for this machine"))
}

/// The audit path of leaf `index` in the tree of `leaves` (RFC 6962 PATH).
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, AuditError> {
    let index = to_usize(index, "leaf_index")?;
    if index >= leaves.len() {
        return Err(AuditError::invalid(
            "leaf_index",
            format!("{index} is not below the tree size {}", leaves.len()),
        ));
    }
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Ok(proof)
}

fn path(index: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    if index < k {
        path(index, &leaves[..k], proof);
        proof.push(root(&leaves[k..]));
    } else {
        path(index - k, &leaves[k..], proof);
        proof.push(root(&leaves[..k]));
    }
}

/// The proof that the tree of the first `old_size` leaves is a prefix of the
/// tree of `leaves` (RFC 6962 PROOF). Empty when `old_size` is 0 or equal.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, AuditError> {
    let old_size = to_usize(old_size, "old_size")?;
    if old_size > leaves.len() {
        return Err(AuditError::invalid(
            "old_size",
            format!("{old_size} exceeds the tree size {}", leaves.len()),
        ));
    }
    let mut proof = Vec::new();
    if old_size > 0 {
        subproof(old_size, leaves, true, &mut proof);
    }
    Ok(proof)
}

fn subproof(m: usize, leaves: &[Hash], whole_old_tree: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole_old_tree {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof(m, &leaves[..k], whole_old_tree, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion_proof(index: u64, tree_size: u64, leaf: &Hash, proof: &[Hash]) -> Result<Hash, AuditError> {
    if index >= tree_size {
        return Err(AuditError::Verification(format!(
            "leaf index {index} is not below the tree size {tree_size}"
        )));
    }
    let mut position = index;
    let mut last = tree_size - 1;
    let mut running = *leaf;
    for sibling in proof {
        if last == 0 {
            return Err(AuditError::Verification(
                "inclusion proof is longer than the tree is deep".into(),
            ));
        }
        if position & 1 == 1 || position == last {
            running = node_hash(sibling, &running);
            while position & 1 == 0 && position != 0 {
                position >>= 1;
                last >>= 1;
            }
        } else {
            running = node_hash(&running, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(AuditError::Verification("inclusion proof is too short".into()));
    }
    Ok(running)
}

/// Checks that `leaf` is at `index` in the tree of `tree_size` with `root`.
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), AuditError> {
    let computed = root_from_inclusion_proof(index, tree_size, leaf, proof)?;
    if &computed != root {
        return Err(AuditError::Verification("inclusion proof leads to another root".into()));
    }
    Ok(())
}

/// Checks that the tree of `old_size` with `old_root` is a prefix of the
/// tree of `new_size` with `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), AuditError> {
    if old_size > new_size {
        return Err(AuditError::Verification(format!(
            "old size {old_size} is larger than new size {new_size}"
        )));
    }
    if old_size == 0 {
        if proof.is_empty() {
            return Ok(());
        }
        return Err(AuditError::Verification("the empty tree needs an empty proof".into()));
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(AuditError::Verification("equal sizes need an empty proof".into()));
        }
        if old_root != new_root {
            return Err(AuditError::Verification("equal sizes with different roots".into()));
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(AuditError::Verification("consistency proof is empty".into()));
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let mut position = old_size - 1;
    let mut last = new_size - 1;
    while position & 1 == 1 {
        position >>= 1;
        last >>= 1;
    }
    let mut old_running = path[0];
    let mut new_running = path[0];
    for node in &path[1..] {
        if last == 0 {
            return Err(AuditError::Verification("consistency proof is too long".into()));
        }
        if position & 1 == 1 || position == last {
            old_running = node_hash(node, &old_running);
            new_running = node_hash(node, &new_running);
            while position & 1 == 0 && position != 0 {
                position >>= 1;
                last >>= 1;
            }
        } else {
            new_running = node_hash(&new_running, node);
        }
        position >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(AuditError::Verification("consistency proof is too short".into()));
    }
    if &old_running != old_root {
        return Err(AuditError::Verification(
            "consistency proof does not lead to the old root".into(),
        ));
    }
    if &new_running != new_root {
        return Err(AuditError::Verification(
            "consistency proof does not lead to the new root".into(),
        ));
    }
    Ok(())
}

/// The roots of the perfect subtrees that make up a tree (its compact
/// range from 0), so appending a leaf and taking the root cost O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Perfect subtree roots, largest (leftmost) first.
    peaks: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.peaks.pop().expect("a set low bit of the size has a peak");
            node = node_hash(&left, &node);
            size >>= 1;
        }
        self.peaks.push(node);
        self.size += 1;
        debug_assert_eq!(self.peaks.len(), self.size.count_ones() as usize);
    }

    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(smallest) = peaks.next() else {
            return EMPTY_ROOT;
        };
        peaks.fold(*smallest, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(i.to_string().as_bytes())).collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(root(&[]), EMPTY_ROOT);
    }

    #[test]
    fn split_point_is_the_largest_power_of_two_below_n() {
        let expected = [(2, 1), (3, 2), (4, 2), (5, 4), (7, 4), (8, 4), (9, 8), (1025, 1024)];
        for (n, k) in expected {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn frontier_matches_the_recursive_root_at_every_size() {
        let all = leaves(200);
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), EMPTY_ROOT);
        for (i, leaf) in all.iter().enumerate() {
            frontier.push(*leaf);
            assert_eq!(frontier.root(), root(&all[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn every_built_proof_verifies_and_a_neighbours_does_not() {
        let all = leaves(40);
        for size in 1..=all.len() {
            let tree = &all[..size];
            let tree_root = root(tree);
            for index in 0..size {
                let proof = inclusion_proof(tree, index as u64).unwrap();
                verify_inclusion(index as u64, size as u64, &tree[index], &proof, &tree_root).unwrap();
                if size > 1 {
                    let other = (index + 1) % size;
                    assert!(verify_inclusion(other as u64, size as u64, &tree[index], &proof, &tree_root).is_err());
                }
            }
            for old in 0..=size {
                let proof = consistency_proof(tree, old as u64).unwrap();
                let old_root = root(&all[..old]);
                verify_consistency(old as u64, size as u64, &old_root, &tree_root, &proof).unwrap();
                if old > 0 && old < size {
                    let wrong_old = root(&leaves(old + 1)[1..]);
                    assert!(verify_consistency(old as u64, size as u64, &wrong_old, &tree_root, &proof).is_err());
                }
            }
        }
    }

    #[test]
    fn out_of_range_requests_are_refused() {
        let all = leaves(5);
        assert!(inclusion_proof(&all, 5).is_err());
        assert!(consistency_proof(&all, 6).is_err());
        assert!(verify_inclusion(5, 5, &all[0], &[], &root(&all)).is_err());
        assert!(verify_consistency(6, 5, &EMPTY_ROOT, &EMPTY_ROOT, &[]).is_err());
    }
}
