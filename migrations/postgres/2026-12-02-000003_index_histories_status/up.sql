-- "Every status" newest first is one backward range of this index: the (status, id)
-- pairs come in id order, so a page reads its own rows and nothing else.
CREATE INDEX CONCURRENTLY histories_status_id_idx ON histories (status, id);
