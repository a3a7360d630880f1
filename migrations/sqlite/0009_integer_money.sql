-- 0009: money and quantities are integers, enforced by the schema (issue 11,
-- SPEC section 2 "Bounds").  SQLite turns an integer `+` that overflows into
-- a REAL (the bucket upsert once wrote 1.2e+19): CHECK (typeof(x) =
-- 'integer') on every money and quantity column makes such a write fail
-- instead, and ledger_bounds holds the totals that keep every sum of the
-- ledger inside int64 (docs/LEDGER.md, "Bounds").
--
-- SQLite cannot add a CHECK to a table: usage_records is rebuilt as 0007
-- did (rows, ids, indexes and the append-only triggers kept), and
-- usage_buckets is rebuilt from the records it sums, which also repairs a
-- bucket an earlier version left REAL or wrapped.  A ledger whose rows
-- already sum past int64 cannot be migrated: sum() fails with "integer
-- overflow" and the migration, and the daemon's start, with it.
CREATE TABLE usage_records_0009 (
    id              INTEGER PRIMARY KEY,
    provider        TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    seq             INTEGER,
    kind            TEXT NOT NULL CHECK (kind = 'usage' OR kind = 'adjustment' OR kind = 'void'),
    adjustment      TEXT CHECK (adjustment = 'credit' OR adjustment = 'refund' OR adjustment = 'debit'),
    supersedes      TEXT,
    institution     TEXT NOT NULL,
    project         TEXT NOT NULL,
    member          TEXT NOT NULL DEFAULT '',
    resource        TEXT NOT NULL,
    class           TEXT NOT NULL DEFAULT '',
    model           TEXT NOT NULL DEFAULT '',
    quantity        INTEGER NOT NULL CHECK (typeof(quantity) = 'integer' AND quantity > 0),
    start_us        INTEGER NOT NULL,
    end_us          INTEGER NOT NULL CHECK (end_us >= start_us),
    received_us     INTEGER NOT NULL,
    book_us         INTEGER NOT NULL CHECK (typeof(book_us) = 'integer'),
    late            INTEGER NOT NULL DEFAULT 0,
    charter_version INTEGER NOT NULL,
    rate_micro      INTEGER NOT NULL CHECK (typeof(rate_micro) = 'integer'),
    charge_micro    INTEGER NOT NULL CHECK (typeof(charge_micro) = 'integer'),
    overage         INTEGER NOT NULL DEFAULT 0,
    source          TEXT NOT NULL DEFAULT 'provider' CHECK (source IN ('provider','gate')),
    canonical       BLOB NOT NULL,
    sha256          BLOB NOT NULL CHECK (length(sha256) = 32),
    leaf_index      INTEGER,
    UNIQUE (provider, record_id)
);
INSERT INTO usage_records_0009(id, provider, record_id, seq, kind, adjustment, supersedes,
    institution, project, member, resource, class, model, quantity, start_us, end_us,
    received_us, book_us, late, charter_version, rate_micro, charge_micro, overage, source,
    canonical, sha256, leaf_index)
SELECT id, provider, record_id, seq, kind, adjustment, supersedes, institution, project,
    member, resource, class, model, quantity, start_us, end_us, received_us, book_us, late,
    charter_version, rate_micro, charge_micro, overage, source, canonical, sha256, leaf_index
FROM usage_records ORDER BY id;
DROP TABLE usage_records;
ALTER TABLE usage_records_0009 RENAME TO usage_records;
CREATE INDEX usage_by_book ON usage_records(book_us);
CREATE INDEX usage_by_inst_book ON usage_records(institution, book_us);
CREATE INDEX usage_by_supersedes ON usage_records(provider, supersedes) WHERE supersedes IS NOT NULL;
CREATE TRIGGER usage_no_update BEFORE UPDATE ON usage_records
BEGIN SELECT RAISE(ABORT, 'the usage ledger is append-only'); END;
CREATE TRIGGER usage_no_delete BEFORE DELETE ON usage_records
BEGIN SELECT RAISE(ABORT, 'the usage ledger is append-only'); END;

-- Bucket b holds book_us in [b, b + 1) * 15 minutes (floor division, as
-- bucket_of in store/sqlite_ledger.c).
CREATE TABLE usage_buckets_0009 (
    institution TEXT NOT NULL,
    project     TEXT NOT NULL,
    member      TEXT NOT NULL,
    bucket      INTEGER NOT NULL CHECK (typeof(bucket) = 'integer'),
    charge      INTEGER NOT NULL CHECK (typeof(charge) = 'integer'),
    PRIMARY KEY (institution, project, member, bucket)
) WITHOUT ROWID;
INSERT INTO usage_buckets_0009(institution, project, member, bucket, charge)
SELECT institution, project, member,
    CASE WHEN book_us < 0 AND book_us % 900000000 != 0 THEN book_us / 900000000 - 1
         ELSE book_us / 900000000 END,
    sum(charge_micro)
FROM usage_records GROUP BY 1, 2, 3, 4;
DROP TABLE usage_buckets;
ALTER TABLE usage_buckets_0009 RENAME TO usage_buckets;
CREATE INDEX buckets_by_inst ON usage_buckets(institution, bucket);
CREATE INDEX buckets_by_proj ON usage_buckets(institution, project, bucket);
CREATE INDEX buckets_by_time ON usage_buckets(bucket);

-- The ledger's totals: every positive charge and every quantity ever
-- booked.  The store refuses a record that would take either past int64,
-- so that no sum of any subset of the rows (a bucket, a level over a
-- period, a report's group, the sum cache, in any order of addition) can
-- overflow.  The row holds the totals of the records with id <= upto; the
-- store adds the records after it when it opens, and rewrites the row
-- every 1024 records (store/sqlite_ledger.c, "bounds").
CREATE TABLE ledger_bounds (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    charge_pos INTEGER NOT NULL CHECK (typeof(charge_pos) = 'integer' AND charge_pos >= 0),
    quantity   INTEGER NOT NULL CHECK (typeof(quantity) = 'integer' AND quantity >= 0),
    upto       INTEGER NOT NULL CHECK (typeof(upto) = 'integer')
);
INSERT INTO ledger_bounds(id, charge_pos, quantity, upto) VALUES (1,
    (SELECT coalesce(sum(charge_micro), 0) FROM usage_records WHERE charge_micro > 0),
    (SELECT coalesce(sum(quantity), 0) FROM usage_records),
    (SELECT coalesce(max(id), 0) FROM usage_records));
