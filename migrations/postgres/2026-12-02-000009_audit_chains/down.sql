DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints;
DROP TRIGGER histories_append_only ON histories;
DROP FUNCTION audit_append_only();
DROP TABLE audit_checkpoints;
ALTER TABLE histories DROP COLUMN hash, DROP COLUMN seq, DROP COLUMN chain;
DROP TABLE audit_chains;
