-- `original` substrings of three or more characters: a trigram index answers
-- `original_folded LIKE '%…%'` with the rows that contain the needle's trigrams.
CREATE INDEX CONCURRENTLY randomizes_original_trgm_idx ON randomizes USING gin (original_folded gin_trgm_ops);
