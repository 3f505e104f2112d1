-- flagnet store, PostgreSQL dialect, version 4: policy versions and the
-- proposals of the two-person rule. Mirrors migrations/sqlite/V4; encodings
-- as in V1.
--
-- A version is one applied policy of the node's agency, numbered 1, 2, 3, ...
-- per agency without gaps, never changed once written. The primary key is
-- what refuses a second version on one base when replicas apply at once:
-- the later insert finds the row and stores nothing. The whole version is
-- the sealed body, bound to the table, the agency, the number, the instant
-- and the content hash, so a policy edited in the database behind the
-- node's back does not open.
CREATE TABLE policy_versions (
    agency       TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL CHECK (version >= 1),
    created_at   BIGINT NOT NULL,
    content_hash TEXT COLLATE "C" NOT NULL,
    sealed       BYTEA  NOT NULL,
    PRIMARY KEY (agency, version)
);

-- An edit waiting for a second privacy officer; `closed_at` is plain so open
-- proposals are found by index, and bound so a closed one cannot reopen.
CREATE TABLE policy_proposals (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    agency       TEXT COLLATE "C" NOT NULL,
    base_version BIGINT NOT NULL CHECK (base_version >= 1),
    proposed_at  BIGINT NOT NULL,
    closed_at    BIGINT,
    sealed       BYTEA  NOT NULL
);

CREATE INDEX policy_proposals_open ON policy_proposals (agency, closed_at, proposed_at);
