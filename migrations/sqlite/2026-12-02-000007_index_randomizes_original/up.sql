-- `original` substrings of three or more characters: an FTS5 trigram index over the
-- folded word (an external-content table: it stores the index, not a second copy).
-- case_sensitive 1 because the service folds case itself, identically for the column
-- and the needle. Triggers keep it in step with whoever writes the table.
CREATE VIRTUAL TABLE randomizes_trigram USING fts5(
    original_folded, content = 'randomizes', content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1'
);
INSERT INTO randomizes_trigram (randomizes_trigram) VALUES ('rebuild');

CREATE TRIGGER randomizes_trigram_insert AFTER INSERT ON randomizes
BEGIN
    INSERT INTO randomizes_trigram (rowid, original_folded) VALUES (new.id, new.original_folded);
END;

CREATE TRIGGER randomizes_trigram_delete AFTER DELETE ON randomizes
BEGIN
    INSERT INTO randomizes_trigram (randomizes_trigram, rowid, original_folded)
        VALUES ('delete', old.id, old.original_folded);
END;

CREATE TRIGGER randomizes_trigram_update AFTER UPDATE OF original_folded ON randomizes
BEGIN
    INSERT INTO randomizes_trigram (randomizes_trigram, rowid, original_folded)
        VALUES ('delete', old.id, old.original_folded);
    INSERT INTO randomizes_trigram (rowid, original_folded) VALUES (new.id, new.original_folded);
END;
