-- 0007: fewer bytes per usage record on PostgreSQL (issue 13, "Storage";
-- docs/POSTGRES.md, "The ledger's layout"; docs/BENCH_PG.md, "Storage").
--
-- 1. A usage record's log leaf is kept in its own row: usage_records gets
--    leaf_hash, written with leaf_index by the record's INSERT, and such a
--    record has no tlog_leaves row.  tlog_leaves keeps the other leaves
--    (charters, audit entries, records logged by the start-up backfill,
--    records copied from SQLite, and every leaf written before this
--    migration: they are not moved, nothing is rewritten in the log).  The
--    view tlog_leaves_all is the whole level 0 of the tree, in the columns
--    of tlog_leaves; the store, fsck and the copy read it.
-- 2. The table is rebuilt with its fixed-width columns first (no alignment
--    padding between text and integers); every row, id and value is kept.
-- 3. sha256 may be NULL: the SHA-256 of the record's canonical bytes
--    (stored, or rebuilt from the fields: the sealed spelling), which is
--    what every signed record has; the store writes NULL then and
--    recomputes it when the row is read.  A value is written only where it
--    differs (never for a record allot checked).  Rows written before keep
--    theirs.
-- 4. book_us and leaf_index get BRIN indexes (a few bytes per thousand
--    records) instead of B-trees: records are appended nearly in booking
--    order and in leaf order, so a range of either is a range of pages.
--    autosummarize: each filled block range is summarized by autovacuum
--    soon after; until then (or with autovacuum off, until the next
--    VACUUM) a scan reads the unsummarized ranges whole.
--
-- Unchanged: UNIQUE(provider, record_id), the append-only triggers,
-- integer micro-credits, the columns' names, types and collations (only
-- sha256 loses its NOT NULL, 3.).

ALTER TABLE usage_records RENAME TO usage_records_0006;
ALTER TABLE usage_records_0006 RENAME CONSTRAINT usage_records_pkey TO usage_records_0006_pkey;
ALTER TABLE usage_records_0006
    RENAME CONSTRAINT usage_records_provider_record_id_key TO usage_records_0006_key;
ALTER SEQUENCE usage_records_id_seq RENAME TO usage_records_0006_id_seq;
DROP INDEX usage_by_book, usage_by_inst_book, usage_by_supersedes, usage_by_provider_seq;

CREATE TABLE usage_records (
    id              BIGINT GENERATED ALWAYS AS IDENTITY,
    seq             BIGINT,
    quantity        BIGINT NOT NULL CHECK (quantity > 0),
    start_us        BIGINT NOT NULL,
    end_us          BIGINT NOT NULL CHECK (end_us >= start_us),
    received_us     BIGINT NOT NULL,
    book_us         BIGINT NOT NULL,    -- instant whose period is charged
    charter_version BIGINT NOT NULL,
    rate_micro      BIGINT NOT NULL,
    charge_micro    BIGINT NOT NULL,    -- signed; credits, refunds, voids < 0
    leaf_index      BIGINT,
    late            SMALLINT NOT NULL DEFAULT 0 CHECK (late IN (0, 1)),
    overage         SMALLINT NOT NULL DEFAULT 0 CHECK (overage IN (0, 1)),
    provider        TEXT COLLATE "C" NOT NULL,
    record_id       TEXT COLLATE "C" NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('usage','adjustment','void')),
    adjustment      TEXT CHECK (adjustment IN ('credit','refund','debit')),
    supersedes      TEXT COLLATE "C",
    institution     TEXT COLLATE "C" NOT NULL,
    project         TEXT COLLATE "C" NOT NULL,
    member          TEXT COLLATE "C" NOT NULL DEFAULT '',
    resource        TEXT COLLATE "C" NOT NULL,
    class           TEXT COLLATE "C" NOT NULL DEFAULT '',
    model           TEXT COLLATE "C" NOT NULL DEFAULT '',
    source          TEXT NOT NULL DEFAULT 'provider' CHECK (source IN ('provider','gate')),
    canonical       BYTEA NOT NULL,
    sha256          BYTEA CHECK (length(sha256) = 32),  -- NULL: SHA-256(canonical bytes)
    -- the record's log leaf hash; NULL when its leaf is a tlog_leaves row
    leaf_hash       BYTEA CHECK (length(leaf_hash) = 32),
    CONSTRAINT usage_records_pkey PRIMARY KEY (id),
    CONSTRAINT usage_records_provider_record_id_key UNIQUE (provider, record_id),
    CHECK (leaf_hash IS NULL OR leaf_index IS NOT NULL)
);

INSERT INTO usage_records (id, seq, quantity, start_us, end_us, received_us, book_us,
        charter_version, rate_micro, charge_micro, leaf_index, late, overage, provider,
        record_id, kind, adjustment, supersedes, institution, project, member, resource,
        class, model, source, canonical, sha256)
    OVERRIDING SYSTEM VALUE
    SELECT id, seq, quantity, start_us, end_us, received_us, book_us, charter_version,
        rate_micro, charge_micro, leaf_index, late, overage, provider, record_id, kind,
        adjustment, supersedes, institution, project, member, resource, class, model,
        source, canonical, sha256
    FROM usage_records_0006 ORDER BY id;
-- The identity continues after the old one (not after max(id): an id
-- handed out by a rolled-back insert is not reused either).
SELECT setval(pg_get_serial_sequence('usage_records', 'id'),
              (SELECT last_value FROM usage_records_0006_id_seq),
              (SELECT is_called FROM usage_records_0006_id_seq));
DROP TABLE usage_records_0006;

CREATE INDEX usage_by_book ON usage_records USING brin (book_us) WITH (autosummarize = on);
CREATE INDEX usage_by_inst_book ON usage_records(institution, book_us);
CREATE INDEX usage_by_supersedes ON usage_records(provider, supersedes) WHERE supersedes IS NOT NULL;
CREATE INDEX usage_by_provider_seq ON usage_records(provider, seq) WHERE seq IS NOT NULL;
-- Leaf indices grow with the rows' physical order, nearly: a transaction
-- takes its leaf indices under the log head's row lock, held until it
-- commits, and writes its rows meanwhile.  A range of leaves is then a
-- range of pages, found by a BRIN index of 8 pages (about 240 records) a
-- range.
CREATE INDEX usage_by_leaf ON usage_records USING brin (leaf_index)
    WITH (pages_per_range = 8, autosummarize = on);
SELECT allot_make_append_only('usage_records');

-- Level 0 of the log: the leaves kept in records' rows and the others.
-- A leaf index is in one of the two only (the store writes a record's
-- leaf to one place; fsck counts both against the head's size).
CREATE VIEW tlog_leaves_all AS
    SELECT idx, type, ref, leaf_hash, name FROM tlog_leaves
    UNION ALL
    SELECT leaf_index, 'usage', id, leaf_hash, provider || '/' || record_id
    FROM usage_records WHERE leaf_hash IS NOT NULL;
