DROP INDEX CONCURRENTLY IF EXISTS histories_status_id_idx;
