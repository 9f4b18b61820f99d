-- SQLite appends the rowid (= id) to every index entry, so (status) is (status, id).
CREATE INDEX histories_status_id_idx ON histories (status);
