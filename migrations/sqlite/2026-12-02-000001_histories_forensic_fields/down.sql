DROP TABLE service_secrets;
ALTER TABLE histories DROP COLUMN trace_id;
ALTER TABLE histories DROP COLUMN token_id;
ALTER TABLE histories DROP COLUMN resource_id;
