-- "Every subject" newest first is one backward range of this index: the (subject, id)
-- pairs come in id order, so a page reads its own rows and nothing else.
CREATE INDEX CONCURRENTLY histories_subject_id_idx ON histories (subject, id);
