-- SQLite appends the rowid (= id) to every index entry, so (method) is (method, id).
CREATE INDEX histories_method_id_idx ON histories (method);
