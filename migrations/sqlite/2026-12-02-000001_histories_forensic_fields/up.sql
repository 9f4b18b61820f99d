-- SPEC §5 / §10: the forensic fields and the key that signs paging cursors. Indexes
-- come in the migrations after this one, one each (as on PostgreSQL, where they are
-- built CONCURRENTLY). SQLite needs nothing for ordered ids: one writer at a time, and
-- AUTOINCREMENT never goes back. Its `path` already compares byte-wise (BINARY).
ALTER TABLE histories ADD COLUMN resource_id INTEGER;
ALTER TABLE histories ADD COLUMN token_id TEXT;
ALTER TABLE histories ADD COLUMN trace_id TEXT;

-- The key that makes paging cursors unforgeable: in the database, so it outlives
-- restarts. randomblob() draws from SQLite's CSPRNG, seeded by the OS.
CREATE TABLE service_secrets (
    name   TEXT PRIMARY KEY,
    secret BLOB NOT NULL
);
INSERT INTO service_secrets (name, secret) VALUES ('cursor', randomblob(32));
