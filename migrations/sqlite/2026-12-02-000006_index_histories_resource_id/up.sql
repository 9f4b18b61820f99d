-- SQLite appends the rowid (= id) to every index entry, so (resource_id) is (resource_id, id).
CREATE INDEX histories_resource_id_id_idx ON histories (resource_id);
