-- 0003: member tokens: what was minted, and revocations (which survive
-- restarts).  Tokens themselves are never stored.
CREATE TABLE tokens_issued (
    jti         TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    project     TEXT NOT NULL,
    member      TEXT NOT NULL,
    kid         TEXT NOT NULL,
    iat         INTEGER NOT NULL,
    exp         INTEGER NOT NULL,
    minted_by   TEXT NOT NULL
);
CREATE INDEX tokens_by_member ON tokens_issued(institution, member);

CREATE TABLE token_revocations (
    id          INTEGER PRIMARY KEY,
    jti         TEXT,                -- one token, or
    institution TEXT,                -- every token of a member
    member      TEXT,
    before_us   INTEGER,             -- ... issued before this instant
    revoked_at  INTEGER NOT NULL,
    revoked_by  TEXT NOT NULL,
    CHECK ((jti IS NOT NULL) != (member IS NOT NULL))
);
CREATE TRIGGER revocations_no_delete BEFORE DELETE ON token_revocations
BEGIN SELECT RAISE(ABORT, 'revocations are permanent'); END;

-- Gate settlements are named "gate:<jti>:<n>-<resource>": this index finds a
-- token's spend without scanning the ledger.
CREATE INDEX usage_gate_ids ON usage_records(record_id) WHERE source = 'gate';
