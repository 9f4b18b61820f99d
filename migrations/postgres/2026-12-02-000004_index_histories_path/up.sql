-- "Every path" newest first is one backward range of this index: the (path, id)
-- pairs come in id order, so a page reads its own rows and nothing else.
CREATE INDEX CONCURRENTLY histories_path_id_idx ON histories (path, id);
