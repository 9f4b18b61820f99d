CREATE INDEX CONCURRENTLY histories_resource_id_id_idx ON histories (resource_id, id);
