-- SPEC §13: the first response of a write sent with `Idempotency-Key`, stored in the
-- writer's transaction with the write itself, so a record never exists without its key
-- or a key without its record. The primary key is what makes two replicas' requests with
-- one key create one record: the second commit fails on it and replays the first's.
-- The response is kept as the record it showed (status 201/200 with the record, 204
-- without), from which the API renders it again byte for byte.
CREATE TABLE idempotency_keys (
    key            TEXT         PRIMARY KEY,
    -- SHA-256 of the request (method, path, If-Match, body): the same key with another
    -- request is refused.
    fingerprint    BYTEA        NOT NULL,
    status         INTEGER      NOT NULL,
    record_id      BIGINT,
    version        INTEGER,
    original       TEXT,
    jumbled        TEXT,
    record_created TIMESTAMP(3),
    record_updated TIMESTAMP(3),
    -- When it was stored; rows older than IDEMPOTENCY_TTL are purged in the background.
    created        TIMESTAMP(3) NOT NULL
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created);
