-- flagnet store, PostgreSQL dialect, version 2: encounter alerts at the owner
-- and the delivery queue at the reporting node. Mirrors migrations/sqlite/V2;
-- encodings as in V1. The sealed body is the whole encounter (who, where,
-- what happened), bound to the table, the encounter id and the row's
-- plaintext columns.

-- Encounters about this node's flags, in alert order. `cursor` comes from an
-- identity sequence, which never hands a value out twice; writers take a
-- table lock while they insert (see src/postgres.rs), so cursors also become
-- visible in increasing order and a liaison resuming from a cursor gets
-- exactly what came after it.
CREATE TABLE alerts (
    cursor       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    encounter_id TEXT COLLATE "C" NOT NULL UNIQUE,
    flag_id      TEXT COLLATE "C" NOT NULL REFERENCES flags (id),
    owner        TEXT COLLATE "C" NOT NULL,
    received_at  BIGINT NOT NULL,
    sealed       BYTEA  NOT NULL
);

CREATE INDEX alerts_by_owner ON alerts (owner, cursor);

-- Encounters reported here about another agency's flags, kept until that
-- agency's node has acknowledged them.
CREATE TABLE outbox (
    encounter_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    owner        TEXT COLLATE "C" NOT NULL,
    queued_at    BIGINT NOT NULL,
    delivered_at BIGINT,
    sealed       BYTEA  NOT NULL
);

CREATE INDEX outbox_pending ON outbox (queued_at, encounter_id) WHERE delivered_at IS NULL;
