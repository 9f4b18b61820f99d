-- SQLite appends the rowid (= id) to every index entry, so (path) is (path, id).
CREATE INDEX histories_path_id_idx ON histories (path);
