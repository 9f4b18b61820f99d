DROP INDEX CONCURRENTLY IF EXISTS randomizes_original_trgm_idx;
