-- 0002: the usage ledger.  Append-only: records are never updated or
-- deleted; corrections are new records (kind adjustment or void).
CREATE TABLE usage_records (
    id              INTEGER PRIMARY KEY,
    provider        TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    seq             INTEGER,
    kind            TEXT NOT NULL CHECK (kind IN ('usage','adjustment','void')),
    adjustment      TEXT CHECK (adjustment IN ('credit','refund','debit')),
    supersedes      TEXT,
    institution     TEXT NOT NULL,
    project         TEXT NOT NULL,
    member          TEXT NOT NULL DEFAULT '',
    resource        TEXT NOT NULL,
    class           TEXT NOT NULL DEFAULT '',
    model           TEXT NOT NULL DEFAULT '',
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    start_us        INTEGER NOT NULL,
    end_us          INTEGER NOT NULL CHECK (end_us >= start_us),
    received_us     INTEGER NOT NULL,
    book_us         INTEGER NOT NULL,   -- instant whose period is charged
    late            INTEGER NOT NULL DEFAULT 0,
    charter_version INTEGER NOT NULL,
    rate_micro      INTEGER NOT NULL,
    charge_micro    INTEGER NOT NULL,   -- signed; credits, refunds, voids < 0
    overage         INTEGER NOT NULL DEFAULT 0,
    source          TEXT NOT NULL DEFAULT 'provider' CHECK (source IN ('provider','gate')),
    canonical       BLOB NOT NULL,
    sha256          BLOB NOT NULL CHECK (length(sha256) = 32),
    UNIQUE (provider, record_id)
);
CREATE INDEX usage_by_book ON usage_records(book_us);
CREATE INDEX usage_by_inst_book ON usage_records(institution, book_us);
CREATE INDEX usage_by_supersedes ON usage_records(provider, supersedes) WHERE supersedes IS NOT NULL;
CREATE TRIGGER usage_no_update BEFORE UPDATE ON usage_records
BEGIN SELECT RAISE(ABORT, 'the usage ledger is append-only'); END;
CREATE TRIGGER usage_no_delete BEFORE DELETE ON usage_records
BEGIN SELECT RAISE(ABORT, 'the usage ledger is append-only'); END;

-- Charges summed per member and 15-minute UTC bucket (every time zone offset
-- is a multiple of 15 minutes, so any local-midnight period is a whole range
-- of buckets).  Maintained in the same transaction as each record.
CREATE TABLE usage_buckets (
    institution TEXT NOT NULL,
    project     TEXT NOT NULL,
    member      TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    charge      INTEGER NOT NULL,
    PRIMARY KEY (institution, project, member, bucket)
) WITHOUT ROWID;
CREATE INDEX buckets_by_inst ON usage_buckets(institution, bucket);
CREATE INDEX buckets_by_proj ON usage_buckets(institution, project, bucket);
CREATE INDEX buckets_by_time ON usage_buckets(bucket);
