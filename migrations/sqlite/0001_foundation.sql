-- 0001: API keys, applied charters, the admin audit log.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    secret_sha256 BLOB NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    role          TEXT NOT NULL CHECK (role IN ('admin','auditor','institution','provider')),
    institution   TEXT,
    provider      TEXT,
    label         TEXT,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    revoked_at    INTEGER,
    CHECK ((role = 'institution') = (institution IS NOT NULL)),
    CHECK ((role = 'provider') = (provider IS NOT NULL))
);

CREATE TABLE charters (
    version     INTEGER PRIMARY KEY,
    charter_id  TEXT NOT NULL,
    text        BLOB NOT NULL,
    sha256      TEXT NOT NULL,
    author      TEXT NOT NULL,
    applied_at  INTEGER NOT NULL,
    effective   INTEGER NOT NULL
);
CREATE TRIGGER charters_no_update BEFORE UPDATE ON charters
BEGIN SELECT RAISE(ABORT, 'charters are append-only'); END;
CREATE TRIGGER charters_no_delete BEFORE DELETE ON charters
BEGIN SELECT RAISE(ABORT, 'charters are append-only'); END;

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY,
    at            INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT,
    before_sha256 TEXT,
    after_sha256  TEXT,
    detail        TEXT
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
