DROP INDEX CONCURRENTLY IF EXISTS histories_chain_seq_idx;
