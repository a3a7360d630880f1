-- 0006: leaf indices of the usage records that the transparency log's
-- start-up backfill logged (records stored before the log existed: their
-- rows are append-only and cannot be given a leaf_index).  Written only by
-- the backfill, read when a record's leaf_index is NULL (docs/TLOG.md).
CREATE TABLE tlog_backfill (
    ref INTEGER PRIMARY KEY,                -- usage_records.id
    idx INTEGER NOT NULL                    -- its leaf index
);
CREATE TRIGGER tlog_backfill_no_update BEFORE UPDATE ON tlog_backfill
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER tlog_backfill_no_delete BEFORE DELETE ON tlog_backfill
BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
