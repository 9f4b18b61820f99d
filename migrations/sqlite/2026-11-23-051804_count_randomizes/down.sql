DROP TRIGGER randomizes_count_delete;
DROP TRIGGER randomizes_count_insert;
DROP TABLE randomizes_count;
