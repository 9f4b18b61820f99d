-- SPEC §13: the first response of a write sent with `Idempotency-Key`, stored in the
-- writer's transaction with the write itself (see the PostgreSQL migration).
CREATE TABLE idempotency_keys (
    key            TEXT      PRIMARY KEY,
    fingerprint    BLOB      NOT NULL,
    status         INTEGER   NOT NULL,
    record_id      INTEGER,
    version        INTEGER,
    original       TEXT,
    jumbled        TEXT,
    record_created TIMESTAMP,
    record_updated TIMESTAMP,
    created        TIMESTAMP NOT NULL
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created);
