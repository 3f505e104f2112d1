-- flagnet store, PostgreSQL dialect, version 3: break-the-glass review items.
-- Mirrors migrations/sqlite/V3; encodings as in V1. The sealed body is the
-- whole item (who, what, the written reason, and its resolution), bound to
-- the table, the item id and the plaintext columns; `resolved_at` is plain so
-- open items are found by index, and is part of the binding so it cannot be
-- cleared unnoticed.
CREATE TABLE review_items (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    owner       TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    resolved_at BIGINT,
    sealed      BYTEA  NOT NULL
);

CREATE INDEX review_items_open ON review_items (owner, resolved_at, created_at);
