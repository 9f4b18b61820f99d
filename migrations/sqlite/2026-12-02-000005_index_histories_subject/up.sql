-- SQLite appends the rowid (= id) to every index entry, so (subject) is (subject, id).
CREATE INDEX histories_subject_id_idx ON histories (subject);
