-- SPEC §12: hash chains, checkpoints and the guards that keep the history append-only
-- (docs/AUDIT.md). Each writer registers a chain and links every entry it appends;
-- entries from before this migration keep NULL in all three columns.

CREATE TABLE audit_chains (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- UTC by convention, as everywhere in this schema.
    started TIMESTAMP(3) NOT NULL
);

-- Nullable without a default: a catalog change, no table rewrite.
ALTER TABLE histories
    ADD COLUMN chain BIGINT,
    ADD COLUMN seq   BIGINT,
    ADD COLUMN hash  BYTEA;

CREATE TABLE audit_checkpoints (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain     BIGINT       NOT NULL,
    seq       BIGINT       NOT NULL,
    hash      BYTEA        NOT NULL,
    created   TIMESTAMP(3) NOT NULL,
    kind      TEXT         NOT NULL CHECK (kind IN ('interval', 'shutdown', 'cut')),
    signature BYTEA
);
CREATE INDEX audit_checkpoints_chain_seq_idx ON audit_checkpoints (chain, seq);

-- The guards. Statement-level, so a purge step pays one call, not one per row. Only
-- the retention purge deletes, and it says so for its own transaction
-- (`set_config('randomize.purging', 'on', true)`). Anyone who owns the tables can
-- drop these triggers: run the service as a role that does not (docs/AUDIT.md).
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('randomize.purging', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit history is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING HINT = 'entries leave only through the retention purge (AUDIT_RETENTION)';
END
$$;

CREATE TRIGGER histories_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON histories
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
