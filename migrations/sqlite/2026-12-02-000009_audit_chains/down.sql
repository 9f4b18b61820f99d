DROP TRIGGER audit_checkpoints_no_delete;
DROP TRIGGER audit_checkpoints_no_update;
DROP TRIGGER histories_no_delete;
DROP TRIGGER histories_no_update;
DROP TABLE audit_checkpoints;
ALTER TABLE histories DROP COLUMN hash;
ALTER TABLE histories DROP COLUMN seq;
ALTER TABLE histories DROP COLUMN chain;
DROP TABLE audit_chains;
