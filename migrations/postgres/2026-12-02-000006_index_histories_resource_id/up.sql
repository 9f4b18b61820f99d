-- "Every resource_id" newest first is one backward range of this index: the (resource_id, id)
-- pairs come in id order, so a page reads its own rows and nothing else.
CREATE INDEX CONCURRENTLY histories_resource_id_id_idx ON histories (resource_id, id);
