DROP INDEX CONCURRENTLY IF EXISTS histories_method_id_idx;
