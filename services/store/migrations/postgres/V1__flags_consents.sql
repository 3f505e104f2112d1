-- flagnet store, PostgreSQL dialect, version 1: flags, their blind tokens and
-- history, consents, and the data key check. Mirrors migrations/sqlite/V1;
-- the store runs it inside its own schema (the connection's search_path), so
-- no name here is schema-qualified.
--
-- Encodings, shared by every table and identical to SQLite's, so that rows
-- seal and bind alike on both backends (see src/rows.rs and src/seal.rs):
-- * ids are UUIDs as lowercase hyphenated TEXT with the "C" collation: that
--   text sorts bytewise, in the same order as the UUID bytes, so keyset
--   pagination by id follows `Uuid`'s order whatever the database locale;
-- * instants are BIGINT unix nanoseconds, UTC (exact round trip, sortable);
-- * dates are TEXT 'YYYY-MM-DD';
-- * `sealed` is BYTEA: format byte 0x01, a random 24-byte nonce, then the
--   XChaCha20-Poly1305 ciphertext and tag of a JSON body under the node data
--   key. The associated data binds the table, the row id, the owner agency
--   and every plaintext column of the row, so a row whose index columns are
--   edited, or whose body is swapped into another row, fails to open instead
--   of disclosing or misattributing anything.
--
-- Only index columns are plaintext: ids, owner agency, status, review date,
-- instants, revision and blind tokens. Names, birth dates, phones, addresses,
-- clinical detail, the flag basis, consent elements and scope, and who wrote
-- what and why live only inside `sealed`.

-- One flag per row. `sealed` holds the content, the time-bound basis and the
-- author of the current revision.
CREATE TABLE flags (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    owner       TEXT COLLATE "C" NOT NULL,
    status      TEXT   NOT NULL
        CHECK (status IN ('active', 'unverified', 'lapsed', 'revoked', 'archived')),
    review_date TEXT,
    revision    BIGINT NOT NULL CHECK (revision >= 1),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    sealed      BYTEA  NOT NULL
);

CREATE INDEX flags_by_owner ON flags (owner, id);

-- The blind tokens of a flag, in the order they were given. Lookups go by
-- (token, kind); the tokens are HMACs, never the values they were made from.
CREATE TABLE flag_tokens (
    flag_id  TEXT COLLATE "C" NOT NULL REFERENCES flags (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    kind     TEXT   NOT NULL
        CHECK (kind IN ('phone', 'address', 'name_birth_date', 'phonetic_name_birth_date')),
    token    BYTEA  NOT NULL CHECK (length(token) = 32),
    PRIMARY KEY (flag_id, kind, token)
);

CREATE INDEX flag_tokens_by_token ON flag_tokens (token, kind);

-- Every revision of a flag: when and with which status in the clear, who and
-- why in `sealed`.
CREATE TABLE flag_history (
    flag_id    TEXT COLLATE "C" NOT NULL REFERENCES flags (id) ON DELETE CASCADE,
    revision   BIGINT NOT NULL CHECK (revision >= 1),
    changed_at BIGINT NOT NULL,
    status     TEXT   NOT NULL
        CHECK (status IN ('active', 'unverified', 'lapsed', 'revoked', 'archived')),
    sealed     BYTEA  NOT NULL,
    PRIMARY KEY (flag_id, revision)
);

-- Consents of a flag. `sealed` holds the basis, the 42 CFR 2.31 elements, the
-- scope, who recorded it and, once revoked, who revoked it and why;
-- `revoked_at` is in the clear so that "already revoked" needs no key.
-- `seq` is the insertion order that SQLite's implicit rowid gives, the tie
-- break between consents recorded at the same instant; it orders, it is not
-- bound.
CREATE TABLE consents (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    flag_id     TEXT COLLATE "C" NOT NULL REFERENCES flags (id) ON DELETE CASCADE,
    owner       TEXT COLLATE "C" NOT NULL,
    valid_from  BIGINT NOT NULL,
    valid_until BIGINT,
    recorded_at BIGINT NOT NULL,
    revoked_at  BIGINT,
    sealed      BYTEA  NOT NULL,
    seq         BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX consents_by_flag ON consents (flag_id, recorded_at, seq);

-- Facts about the store itself. `data_key_check` is a fixed text sealed under
-- the data key when the schema is created, so connecting with another key
-- fails at once instead of at the first read.
CREATE TABLE store_meta (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);
