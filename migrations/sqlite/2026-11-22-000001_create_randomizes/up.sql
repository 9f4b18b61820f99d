-- AUTOINCREMENT: ids are never reused, even after the newest record is deleted, so an
-- id in an audit entry or a client's cache always means one record.
CREATE TABLE randomizes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    original        TEXT    NOT NULL,
    -- Lower-cased in the service, so the case-insensitive filter behaves the same
    -- for every script on both backends.
    original_folded TEXT    NOT NULL,
    jumbled         TEXT    NOT NULL,
    -- Bumped on every update; the ETag, so If-Match is a single conditional UPDATE.
    version         INTEGER NOT NULL DEFAULT 1,
    created         TIMESTAMP NOT NULL,
    updated         TIMESTAMP NOT NULL
);
