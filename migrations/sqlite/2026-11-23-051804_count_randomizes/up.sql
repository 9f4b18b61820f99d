-- The exact number of records, so the unfiltered list's total (X-Pagination) is one row
-- read instead of a table scan. Triggers keep it, so it stays exact whoever writes: the
-- service, a later migration, an operator's sqlite3.
CREATE TABLE randomizes_count (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    total     INTEGER NOT NULL CHECK (total >= 0)
);
INSERT INTO randomizes_count (singleton, total) SELECT 1, COUNT(*) FROM randomizes;

CREATE TRIGGER randomizes_count_insert AFTER INSERT ON randomizes
BEGIN
    UPDATE randomizes_count SET total = total + 1;
END;

CREATE TRIGGER randomizes_count_delete AFTER DELETE ON randomizes
BEGIN
    UPDATE randomizes_count SET total = total - 1;
END;
