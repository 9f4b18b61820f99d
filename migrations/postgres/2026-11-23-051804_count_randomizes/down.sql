DROP TRIGGER randomizes_count_truncate ON randomizes;
DROP TRIGGER randomizes_count_delete ON randomizes;
DROP TRIGGER randomizes_count_insert ON randomizes;
DROP FUNCTION randomizes_count_truncated();
DROP FUNCTION randomizes_count_deleted();
DROP FUNCTION randomizes_count_inserted();
DROP TABLE randomizes_count;
