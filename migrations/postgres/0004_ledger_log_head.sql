-- 0004: the ledger and the transparency log on PostgreSQL (issue 13 step 3,
-- docs/POSTGRES.md, "The ledger" and "One transparency log").
--
-- The log head: one row holding the committed tree's size and root.  Every
-- transaction that appends leaves locks it (SELECT ... FOR UPDATE) before
-- its first leaf and rewrites it before its COMMIT, so leaves are
-- contiguous and in commit order whichever connection or node appends, and
-- a node checks its cached tree state (the compact range) against the root
-- before appending to it.  root NULL: not known yet (a database whose
-- leaves predate this migration); allotd computes it from the stored nodes
-- at its next start.
CREATE TABLE tlog_head (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL CHECK (size >= 0),
    root BYTEA CHECK (length(root) = 32)
);
INSERT INTO tlog_head(id, size, root)
    SELECT 1, coalesce(max(idx) + 1, 0),
           CASE WHEN count(*) = 0 THEN sha256('') END FROM tlog_leaves;

-- Byte order for the ledger's text keys, as SQLite compares them (BINARY):
-- the prefix range "gate:<jti>:" .. "gate:<jti>;" of token_spent is then a
-- range of the (provider, record_id) index whatever the database's locale
-- (in most locales punctuation is ignored at the first level, so the
-- range would be wrong), reports are ordered as on SQLite, and comparisons
-- skip the locale's collation (faster on every index of these columns).
ALTER TABLE usage_records
    ALTER COLUMN provider    TYPE TEXT COLLATE "C",
    ALTER COLUMN record_id   TYPE TEXT COLLATE "C",
    ALTER COLUMN supersedes  TYPE TEXT COLLATE "C",
    ALTER COLUMN institution TYPE TEXT COLLATE "C",
    ALTER COLUMN project     TYPE TEXT COLLATE "C",
    ALTER COLUMN member      TYPE TEXT COLLATE "C",
    ALTER COLUMN resource    TYPE TEXT COLLATE "C",
    ALTER COLUMN class       TYPE TEXT COLLATE "C",
    ALTER COLUMN model       TYPE TEXT COLLATE "C";
ALTER TABLE usage_buckets
    ALTER COLUMN institution TYPE TEXT COLLATE "C",
    ALTER COLUMN project     TYPE TEXT COLLATE "C",
    ALTER COLUMN member      TYPE TEXT COLLATE "C";
