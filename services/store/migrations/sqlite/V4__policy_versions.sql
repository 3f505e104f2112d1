-- flagnet store, SQLite dialect, version 4: policy versions and the
-- proposals of the two-person rule. Encodings as in V1.
--
-- A version is one applied policy of the node's agency: the model, the
-- policy rows and the role assignments, who made it, when, why, how it came
-- to be (seed, edit, rollback), its approval and what it changed. Versions
-- are numbered 1, 2, 3, ... per agency without gaps and never change once
-- written; the primary key is what refuses a second version on one base.
-- The whole version is the sealed body, bound to the table, the agency, the
-- number, the instant and the content hash, so a policy edited in the
-- database behind the node's back does not open: the node refuses it rather
-- than decide by it.
CREATE TABLE policy_versions (
    agency       TEXT    NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    created_at   INTEGER NOT NULL,
    -- SHA-256 of the content (flagnet_core::PolicyContent::content_hash), lowercase hex
    content_hash TEXT    NOT NULL,
    sealed       BLOB    NOT NULL,
    PRIMARY KEY (agency, version)
) STRICT;

-- An edit waiting for a second privacy officer. `closed_at` is plain so open
-- proposals are found by index, and is part of the binding so a closed
-- proposal cannot be reopened unnoticed.
CREATE TABLE policy_proposals (
    id           TEXT    NOT NULL PRIMARY KEY,
    agency       TEXT    NOT NULL,
    base_version INTEGER NOT NULL CHECK (base_version >= 1),
    proposed_at  INTEGER NOT NULL,
    closed_at    INTEGER,
    sealed       BLOB    NOT NULL
) STRICT;

CREATE INDEX policy_proposals_open ON policy_proposals (agency, closed_at, proposed_at);
