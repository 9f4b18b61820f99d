DROP INDEX CONCURRENTLY IF EXISTS histories_subject_id_idx;
