-- A chain's entries in seq order: where a restarted connection finds its chain's tip,
-- and how `randomize audit verify` walks each chain. Unique: no seq twice in a chain.
CREATE UNIQUE INDEX histories_chain_seq_idx ON histories (chain, seq);
