-- SPEC §12: hash chains, checkpoints and the guards that keep the history append-only
-- (docs/AUDIT.md). Each writer registers a chain and links every entry it appends;
-- entries from before this migration keep NULL in all three columns.

CREATE TABLE audit_chains (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    started TIMESTAMP NOT NULL
);

ALTER TABLE histories ADD COLUMN chain INTEGER;
ALTER TABLE histories ADD COLUMN seq INTEGER;
ALTER TABLE histories ADD COLUMN hash BLOB;

CREATE TABLE audit_checkpoints (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    chain     INTEGER   NOT NULL,
    seq       INTEGER   NOT NULL,
    hash      BLOB      NOT NULL,
    created   TIMESTAMP NOT NULL,
    kind      TEXT      NOT NULL CHECK (kind IN ('interval', 'shutdown', 'cut')),
    signature BLOB
);
CREATE INDEX audit_checkpoints_chain_seq_idx ON audit_checkpoints (chain, seq);

-- The guards. Only the service's own connections define `randomize_purging()`, and it
-- is true only while the retention purge deletes; any other connection (sqlite3, a
-- script) fails on the unknown function, so its DELETE is refused too. Whoever can
-- write the file can drop these: the chains and signed checkpoints are the evidence.
CREATE TRIGGER histories_no_update BEFORE UPDATE ON histories
BEGIN
    SELECT RAISE(ABORT, 'the audit history is append-only: UPDATE on histories refused');
END;
CREATE TRIGGER histories_no_delete BEFORE DELETE ON histories WHEN NOT randomize_purging()
BEGIN
    SELECT RAISE(ABORT, 'the audit history is append-only: DELETE on histories refused');
END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the audit history is append-only: UPDATE on audit_checkpoints refused');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints WHEN NOT randomize_purging()
BEGIN
    SELECT RAISE(ABORT, 'the audit history is append-only: DELETE on audit_checkpoints refused');
END;
