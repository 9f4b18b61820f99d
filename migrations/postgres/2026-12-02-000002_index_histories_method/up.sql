-- "Every method" newest first is one backward range of this index: the (method, id)
-- pairs come in id order, so a page reads its own rows and nothing else.
CREATE INDEX CONCURRENTLY histories_method_id_idx ON histories (method, id);
