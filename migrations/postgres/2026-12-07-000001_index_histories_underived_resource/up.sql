-- The `resource_id` index without the entries whose path already says their record
-- (`/api/randomizes/42` of record 42): the `path` index finds those by that path, so a
-- read of a record puts its entry at a random leaf of one large index, not of two
-- (docs/PERFORMANCE.md, "One index per record read"). Entries without a record are
-- left out too (the comparison is NULL). Built CONCURRENTLY, outside a transaction,
-- so the writer keeps appending; the next migration drops the index it replaces.
CREATE INDEX CONCURRENTLY histories_underived_resource_idx ON histories (resource_id, id)
    WHERE path <> '/api/randomizes/' || CAST(resource_id AS TEXT);
