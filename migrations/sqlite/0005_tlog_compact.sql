-- 0005: the transparency log's compact layout (docs/TLOG.md).  Replaces the
-- tables of 0004: a leaf row holds its hash (level 0 of the tree) and what
-- it logs, but not the leaf bytes (they are recomputed from the entry);
-- tlog_nodes keeps the complete subtrees of level >= 1; each usage record
-- carries its leaf index.  The log of a database that had 0004's tables is
-- rebuilt from the entries at the next start (it had existed for minutes).
DROP TABLE tlog_leaves;
DROP TABLE tlog_nodes;
CREATE TABLE tlog_leaves (
    idx       INTEGER PRIMARY KEY,          -- leaf index, 0, 1, 2, ...
    type      TEXT NOT NULL CHECK (type IN ('usage','charter','audit')),
    ref       INTEGER NOT NULL,             -- usage_records.id, charters.version, audit_log.id
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    name      TEXT                          -- usage: "provider/record_id" (names a deleted record)
);
CREATE TRIGGER tlog_leaves_no_update BEFORE UPDATE ON tlog_leaves
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER tlog_leaves_no_delete BEFORE DELETE ON tlog_leaves
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;

-- Complete subtree (level, idx) = leaves [idx << level, (idx + 1) << level), level >= 1.
CREATE TABLE tlog_nodes (
    level INTEGER NOT NULL CHECK (level >= 1),
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TRIGGER tlog_nodes_no_update BEFORE UPDATE ON tlog_nodes
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER tlog_nodes_no_delete BEFORE DELETE ON tlog_nodes
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;

ALTER TABLE usage_records ADD COLUMN leaf_index INTEGER;
