-- The exact number of records, so the unfiltered list's total (X-Pagination) is one row
-- read instead of a table scan. Triggers keep it, so it stays exact whoever writes: the
-- service, a later migration, an operator's psql. Statement-level, so a multi-row INSERT
-- touches the counter once, not once per row.
CREATE TABLE randomizes_count (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    total     BIGINT  NOT NULL CHECK (total >= 0)
);
INSERT INTO randomizes_count (singleton, total) SELECT 1, COUNT(*) FROM randomizes;

CREATE FUNCTION randomizes_count_inserted() RETURNS trigger LANGUAGE plpgsql
    -- Pinned, so the counter is found whatever search_path the writing session has.
    SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE randomizes_count SET total = total + (SELECT COUNT(*) FROM inserted);
    RETURN NULL;
END
$$;

CREATE FUNCTION randomizes_count_deleted() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE randomizes_count SET total = total - (SELECT COUNT(*) FROM deleted);
    RETURN NULL;
END
$$;

CREATE FUNCTION randomizes_count_truncated() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE randomizes_count SET total = 0;
    RETURN NULL;
END
$$;

CREATE TRIGGER randomizes_count_insert AFTER INSERT ON randomizes
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION randomizes_count_inserted();
CREATE TRIGGER randomizes_count_delete AFTER DELETE ON randomizes
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION randomizes_count_deleted();
CREATE TRIGGER randomizes_count_truncate AFTER TRUNCATE ON randomizes
    FOR EACH STATEMENT EXECUTE FUNCTION randomizes_count_truncated();
