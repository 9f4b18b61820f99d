DROP INDEX histories_chain_seq_idx;
