DROP INDEX CONCURRENTLY IF EXISTS histories_resource_id_id_idx;
