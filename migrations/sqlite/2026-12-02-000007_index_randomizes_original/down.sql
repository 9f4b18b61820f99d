DROP TRIGGER randomizes_trigram_update;
DROP TRIGGER randomizes_trigram_delete;
DROP TRIGGER randomizes_trigram_insert;
DROP TABLE randomizes_trigram;
