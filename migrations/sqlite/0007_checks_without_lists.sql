-- 0007: the same tables with CHECK (x IN ('a','b','c')) written as
-- CHECK (x = 'a' OR x = 'b' OR x = 'c').  Same rows allowed (NULL still
-- passes the optional adjustment), but SQLite evaluates a constant list of
-- three or more with a temporary b-tree that it builds and drops on every
-- INSERT: three per ingested record (two in usage_records, one in
-- tlog_leaves), about a quarter of the statement's cost
-- (docs/BENCH_INGEST.md).  Rows, ids, indexes and triggers are kept.
CREATE TABLE usage_records_0007 (
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
    leaf_index      INTEGER,
    UNIQUE (provider, record_id)
);
INSERT INTO usage_records_0007(id, provider, record_id, seq, kind, adjustment, supersedes,
    institution, project, member, resource, class, model, quantity, start_us, end_us,
    received_us, book_us, late, charter_version, rate_micro, charge_micro, overage, source,
    canonical, sha256, leaf_index)
SELECT id, provider, record_id, seq, kind, adjustment, supersedes, institution, project,
    member, resource, class, model, quantity, start_us, end_us, received_us, book_us, late,
    charter_version, rate_micro, charge_micro, overage, source, canonical, sha256, leaf_index
FROM usage_records ORDER BY id;
DROP TABLE usage_records;
ALTER TABLE usage_records_0007 RENAME TO usage_records;
CREATE INDEX usage_by_book ON usage_records(book_us);
CREATE INDEX usage_by_inst_book ON usage_records(institution, book_us);
CREATE INDEX usage_by_supersedes ON usage_records(provider, supersedes) WHERE supersedes IS NOT NULL;
CREATE INDEX usage_gate_ids ON usage_records(record_id) WHERE source = 'gate';
CREATE TRIGGER usage_no_update BEFORE UPDATE ON usage_records
BEGIN SELECT RAISE(ABORT, 'the usage ledger is append-only'); END;
CREATE TRIGGER usage_no_delete BEFORE DELETE ON usage_records
BEGIN SELECT RAISE(ABORT, 'the usage ledger is append-only'); END;

CREATE TABLE tlog_leaves_0007 (
    idx       INTEGER PRIMARY KEY,          -- leaf index, 0, 1, 2, ...
    type      TEXT NOT NULL CHECK (type = 'usage' OR type = 'charter' OR type = 'audit'),
    ref       INTEGER NOT NULL,             -- usage_records.id, charters.version, audit_log.id
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    name      TEXT                          -- usage: "provider/record_id" (names a deleted record)
);
INSERT INTO tlog_leaves_0007(idx, type, ref, leaf_hash, name)
SELECT idx, type, ref, leaf_hash, name FROM tlog_leaves ORDER BY idx;
DROP TABLE tlog_leaves;
ALTER TABLE tlog_leaves_0007 RENAME TO tlog_leaves;
CREATE TRIGGER tlog_leaves_no_update BEFORE UPDATE ON tlog_leaves
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER tlog_leaves_no_delete BEFORE DELETE ON tlog_leaves
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
