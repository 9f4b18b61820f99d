CREATE TABLE histories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  TEXT      NOT NULL,
    method      TEXT      NOT NULL,
    path        TEXT      NOT NULL,
    query       TEXT,
    status      INTEGER   NOT NULL,
    duration_ms DOUBLE    NOT NULL,
    client_ip   TEXT,
    user_agent  TEXT,
    subject     TEXT,
    created     TIMESTAMP NOT NULL
);
CREATE INDEX histories_created_idx ON histories (created);
CREATE INDEX histories_request_id_idx ON histories (request_id);
