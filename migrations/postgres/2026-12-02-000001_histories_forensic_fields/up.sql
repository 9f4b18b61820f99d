-- SPEC §5 / §10: the forensic fields, a path column that compares byte-wise (so a
-- prefix is an index range on every backend), ids that commit in order (the ascending
-- feed), and the key that signs paging cursors. Indexes come in the migrations after
-- this one, one each, built CONCURRENTLY outside a transaction.

-- Adding nullable columns without a default touches only the catalog, not the rows.
ALTER TABLE histories
    ADD COLUMN resource_id BIGINT,
    ADD COLUMN token_id    TEXT,
    ADD COLUMN trace_id    TEXT;

-- Binary-coercible, so no table rewrite: only the (not yet existing) indexes would be
-- rebuilt. "C" compares bytes, as SQLite's BINARY does, so `path >= p AND path < p'`
-- means "starts with p" on both backends and one B-tree range serves it.
ALTER TABLE histories ALTER COLUMN path SET DATA TYPE TEXT COLLATE "C";

-- Ids that commit in id order. Several replicas insert entries concurrently; with a
-- plain sequence, id 105 can commit while id 103 is still in flight, and a collector
-- that had read up to 105 would never see 103. So the id is drawn under a
-- transaction-level advisory lock that is held until commit: whoever draws ids next
-- waits until the previous drawer's entries are visible. The lock key is the table's
-- OID, so schemas sharing a database do not contend.
CREATE FUNCTION histories_feed_lock() RETURNS void LANGUAGE sql VOLATILE
    SET search_path FROM CURRENT
    AS $$ SELECT pg_advisory_xact_lock('histories'::regclass::oid::bigint) $$;

ALTER TABLE histories ALTER COLUMN id DROP IDENTITY;
CREATE SEQUENCE histories_id_seq OWNED BY histories.id;
SELECT setval('histories_id_seq', COALESCE(MAX(id), 0) + 1, false) FROM histories;

CREATE FUNCTION histories_next_id() RETURNS bigint LANGUAGE sql VOLATILE
    SET search_path FROM CURRENT
    AS $$ SELECT histories_feed_lock(); SELECT nextval('histories_id_seq') $$;
ALTER TABLE histories ALTER COLUMN id SET DEFAULT histories_next_id();

-- The newest committed entry's time, read under the same lock. A VOLATILE SQL function
-- takes a fresh snapshot for each of its statements, so the MAX sees what the previous
-- holder committed. The writer stores GREATEST(its time, this): `created` then never
-- decreases in id order, and a time window of the history is an id range.
CREATE FUNCTION histories_created_floor() RETURNS timestamp(3) LANGUAGE sql VOLATILE
    SET search_path FROM CURRENT
    AS $$ SELECT histories_feed_lock(); SELECT MAX(created) FROM histories $$;

-- The key that makes paging cursors unforgeable: in the database, so every replica
-- accepts every other's cursors and they outlive restarts. gen_random_uuid() draws
-- from the server's strong random source (two of them: 244 random bits).
CREATE TABLE service_secrets (
    name   TEXT  PRIMARY KEY,
    secret BYTEA NOT NULL
);
INSERT INTO service_secrets (name, secret) VALUES
    ('cursor', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- The record list's substring filter uses trigrams (next migrations). A trusted
-- extension: the database owner may create it. Not dropped by down.sql: other schemas
-- of the same database may use it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
