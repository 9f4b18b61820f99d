DROP INDEX CONCURRENTLY IF EXISTS histories_underived_resource_idx;
