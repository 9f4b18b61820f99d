-- One row the writer rewrites to learn whether the database takes writes again after
-- it refused them (disk full, read-only): readiness stays 503 until this succeeds.
CREATE TABLE service_heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    beat TIMESTAMP NOT NULL
);
INSERT INTO service_heartbeat (id, beat) VALUES (1, CURRENT_TIMESTAMP);
