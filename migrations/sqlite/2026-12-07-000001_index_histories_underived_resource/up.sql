-- The `resource_id` index without the entries whose path already says their record
-- (`/api/randomizes/42` of record 42): the `path` index finds those by that path, so a
-- read of a record puts its entry at a random leaf of one large index, not of two
-- (docs/PERFORMANCE.md, "One index per record read"). Entries without a record are
-- left out too (the comparison is NULL). The WHERE is repeated in the queries
-- (histories::PATH_NOT_RECORDS): SQLite uses a partial index only for a query that
-- states its condition.
CREATE INDEX histories_underived_resource_idx ON histories (resource_id)
    WHERE path <> '/api/randomizes/' || CAST(resource_id AS TEXT);
