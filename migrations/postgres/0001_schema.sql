-- 0001: allot's schema on PostgreSQL (SPEC section 9), in the shape the
-- SQLite migrations 0001..0013 reached: the same tables and columns, so
-- `allot store copy` moves rows as they are.  Amounts are integer
-- micro-credits (BIGINT, never floating point), instants integer
-- microseconds since the epoch (UTC).  Append-only tables refuse UPDATE,
-- DELETE and TRUNCATE by triggers (docs/DEPLOY.md).

CREATE FUNCTION allot_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;

-- Refuses UPDATE/DELETE row by row and TRUNCATE of the whole table.
CREATE FUNCTION allot_make_append_only(t regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %s FOR EACH ROW '
                   'EXECUTE FUNCTION allot_append_only()', t::text || '_append_only', t);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
                   'EXECUTE FUNCTION allot_append_only()', t::text || '_no_truncate', t);
END $$;

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    secret_sha256 BYTEA NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    role          TEXT NOT NULL CHECK (role IN ('admin','auditor','institution','provider')),
    institution   TEXT,
    provider      TEXT,
    label         TEXT,
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    revoked_at    BIGINT,
    CHECK ((role = 'institution') = (institution IS NOT NULL)),
    CHECK ((role = 'provider') = (provider IS NOT NULL))
);

CREATE TABLE charters (
    version     BIGINT PRIMARY KEY CHECK (version BETWEEN 1 AND 9007199254740992),
    charter_id  TEXT NOT NULL,
    text        BYTEA NOT NULL,
    sha256      TEXT NOT NULL,
    author      TEXT NOT NULL,
    applied_at  BIGINT NOT NULL,
    effective   BIGINT NOT NULL
);
SELECT allot_make_append_only('charters');

CREATE TABLE audit_log (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT,
    before_sha256 TEXT,
    after_sha256  TEXT,
    detail        TEXT
);
SELECT allot_make_append_only('audit_log');

-- The usage ledger: records are never updated or deleted; corrections are
-- new records (kind adjustment or void).  UNIQUE(provider, record_id)
-- forever (SPEC section 6).
CREATE TABLE usage_records (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider        TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    seq             BIGINT,
    kind            TEXT NOT NULL CHECK (kind IN ('usage','adjustment','void')),
    adjustment      TEXT CHECK (adjustment IN ('credit','refund','debit')),
    supersedes      TEXT,
    institution     TEXT NOT NULL,
    project         TEXT NOT NULL,
    member          TEXT NOT NULL DEFAULT '',
    resource        TEXT NOT NULL,
    class           TEXT NOT NULL DEFAULT '',
    model           TEXT NOT NULL DEFAULT '',
    quantity        BIGINT NOT NULL CHECK (quantity > 0),
    start_us        BIGINT NOT NULL,
    end_us          BIGINT NOT NULL CHECK (end_us >= start_us),
    received_us     BIGINT NOT NULL,
    book_us         BIGINT NOT NULL,    -- instant whose period is charged
    late            SMALLINT NOT NULL DEFAULT 0 CHECK (late IN (0, 1)),
    charter_version BIGINT NOT NULL,
    rate_micro      BIGINT NOT NULL,
    charge_micro    BIGINT NOT NULL,    -- signed; credits, refunds, voids < 0
    overage         SMALLINT NOT NULL DEFAULT 0 CHECK (overage IN (0, 1)),
    source          TEXT NOT NULL DEFAULT 'provider' CHECK (source IN ('provider','gate')),
    canonical       BYTEA NOT NULL,
    sha256          BYTEA NOT NULL CHECK (length(sha256) = 32),
    leaf_index      BIGINT,
    UNIQUE (provider, record_id)
);
CREATE INDEX usage_by_book ON usage_records(book_us);
CREATE INDEX usage_by_inst_book ON usage_records(institution, book_us);
CREATE INDEX usage_by_supersedes ON usage_records(provider, supersedes) WHERE supersedes IS NOT NULL;
CREATE INDEX usage_by_provider_seq ON usage_records(provider, seq) WHERE seq IS NOT NULL;
SELECT allot_make_append_only('usage_records');

-- Charges summed per member and 15-minute UTC bucket, maintained in the
-- same transaction as each record (docs/LEDGER.md, "Quotas").
CREATE TABLE usage_buckets (
    institution TEXT NOT NULL,
    project     TEXT NOT NULL,
    member      TEXT NOT NULL,
    bucket      BIGINT NOT NULL,
    charge      BIGINT NOT NULL,
    PRIMARY KEY (institution, project, member, bucket)
);
CREATE INDEX buckets_by_inst ON usage_buckets(institution, bucket);
CREATE INDEX buckets_by_proj ON usage_buckets(institution, project, bucket);
CREATE INDEX buckets_by_time ON usage_buckets(bucket);

-- The ledger's totals of positive charges and of quantities (SPEC 2,
-- "Bounds"): one row.
CREATE TABLE ledger_bounds (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    charge_pos BIGINT NOT NULL CHECK (charge_pos >= 0),
    quantity   BIGINT NOT NULL CHECK (quantity >= 0),
    upto       BIGINT NOT NULL
);
INSERT INTO ledger_bounds(id, charge_pos, quantity, upto) VALUES (1, 0, 0, 0);

-- Refused provider records, decided for good (docs/LEDGER.md, "Rejections
-- are final").
CREATE TABLE usage_rejections (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    seq         BIGINT,
    sha256      BYTEA NOT NULL CHECK (length(sha256) = 32),
    reason      TEXT NOT NULL,
    received_us BIGINT NOT NULL,
    UNIQUE (provider, record_id)
);
SELECT allot_make_append_only('usage_rejections');

-- Member tokens and their revocations (SPEC section 5).
CREATE TABLE tokens_issued (
    jti         TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    project     TEXT NOT NULL,
    member      TEXT NOT NULL,
    kid         TEXT NOT NULL,
    iat         BIGINT NOT NULL,
    exp         BIGINT NOT NULL,
    minted_by   TEXT NOT NULL
);
CREATE INDEX tokens_by_member ON tokens_issued(institution, member);

CREATE TABLE token_revocations (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jti         TEXT,                -- one token, or
    institution TEXT,                -- every token of a member
    member      TEXT,
    before_us   BIGINT,              -- ... issued before this instant
    revoked_at  BIGINT NOT NULL,
    revoked_by  TEXT NOT NULL,
    CHECK ((jti IS NOT NULL) <> (member IS NOT NULL))
);
SELECT allot_make_append_only('token_revocations');

-- The transparency log (docs/TLOG.md): one leaf per booked record, applied
-- charter and audit entry, in one order whichever node appends.
CREATE TABLE tlog_leaves (
    idx       BIGINT PRIMARY KEY CHECK (idx >= 0),  -- leaf index, 0, 1, 2, ...
    type      TEXT NOT NULL CHECK (type IN ('usage','charter','audit')),
    ref       BIGINT NOT NULL,    -- usage_records.id, charters.version, audit_log.id
    leaf_hash BYTEA NOT NULL CHECK (length(leaf_hash) = 32),
    name      TEXT                -- usage: "provider/record_id"
);
SELECT allot_make_append_only('tlog_leaves');

CREATE TABLE tlog_nodes (
    level BIGINT NOT NULL CHECK (level >= 1),
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);
SELECT allot_make_append_only('tlog_nodes');

CREATE TABLE tlog_backfill (
    ref BIGINT PRIMARY KEY,       -- usage_records.id
    idx BIGINT NOT NULL           -- its leaf index
);
SELECT allot_make_append_only('tlog_backfill');

-- The gate's durable retry queue (SPEC section 2): a row per settlement
-- served but not yet booked, deleted in the transaction that books it.
CREATE TABLE settle_queue (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_base     TEXT NOT NULL UNIQUE,
    provider        TEXT NOT NULL,
    institution     TEXT NOT NULL,
    project         TEXT NOT NULL,
    member          TEXT NOT NULL,
    model           TEXT NOT NULL,
    tokens_in       BIGINT NOT NULL CHECK (tokens_in >= 0),
    tokens_out      BIGINT NOT NULL CHECK (tokens_out >= 0),
    start_us        BIGINT NOT NULL,
    end_us          BIGINT NOT NULL CHECK (end_us >= start_us),
    charter_version BIGINT NOT NULL,
    queued_us       BIGINT NOT NULL,
    reason          TEXT NOT NULL DEFAULT ''
);
