-- flagnet store, SQLite dialect, version 2: encounter alerts at the owner and
-- the delivery queue at the reporting node. Encodings as in V1; the sealed
-- body is the whole encounter (who, where, what happened), bound to the
-- table, the encounter id and the row's plaintext columns.

-- Encounters about this node's flags, in alert order. `cursor` only grows
-- (AUTOINCREMENT never reuses a value), so a liaison resuming from a cursor
-- gets exactly what came after it.
CREATE TABLE alerts (
    cursor       INTEGER PRIMARY KEY AUTOINCREMENT,
    encounter_id TEXT    NOT NULL UNIQUE,
    flag_id      TEXT    NOT NULL REFERENCES flags (id),
    owner        TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    sealed       BLOB    NOT NULL
) STRICT;

CREATE INDEX alerts_by_owner ON alerts (owner, cursor);

-- Encounters reported here about another agency's flags, kept until that
-- agency's node has acknowledged them.
CREATE TABLE outbox (
    encounter_id TEXT    NOT NULL PRIMARY KEY,
    owner        TEXT    NOT NULL,
    queued_at    INTEGER NOT NULL,
    delivered_at INTEGER,
    sealed       BLOB    NOT NULL
) STRICT;

CREATE INDEX outbox_pending ON outbox (delivered_at, queued_at);
