-- 0004: the transparency log (docs/TLOG.md).  One RFC 9162 Merkle log over
-- every usage record, applied charter and audit entry, appended in the same
-- transaction as the entry.  Append-only like the entries themselves.
CREATE TABLE tlog_leaves (
    idx       INTEGER PRIMARY KEY,          -- leaf index, 0, 1, 2, ...
    type      TEXT NOT NULL CHECK (type IN ('usage','charter','audit')),
    ref       INTEGER NOT NULL,             -- usage_records.id, charters.version, audit_log.id
    data      BLOB NOT NULL,                -- the leaf's canonical bytes (JSON)
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)
);
CREATE UNIQUE INDEX tlog_leaves_by_ref ON tlog_leaves(type, ref);
CREATE TRIGGER tlog_leaves_no_update BEFORE UPDATE ON tlog_leaves
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER tlog_leaves_no_delete BEFORE DELETE ON tlog_leaves
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;

-- Every complete subtree (level, idx) = leaves [idx << level, (idx + 1) << level).
CREATE TABLE tlog_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TRIGGER tlog_nodes_no_update BEFORE UPDATE ON tlog_nodes
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER tlog_nodes_no_delete BEFORE DELETE ON tlog_nodes
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
