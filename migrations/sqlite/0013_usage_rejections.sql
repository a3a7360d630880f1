-- 0013: the rejections of provider records, kept forever (SPEC section 6:
-- "UNIQUE(provider, record_id) forever: the same record again returns the
-- original result").  A signed, well-formed record of the authenticated
-- provider that the ledger refuses (unknown member, below zero, no rate,
-- "end" in the future, ...) is a decision about that record: it is stored
-- here in the same transaction as the rest of its batch, so a retry of the
-- batch (after a lost answer or a kill -9) gets the same answer even when
-- the ledger has moved on, and the same id with other content is a
-- conflict.  Malformed records, records of another provider and bad
-- signatures change nothing and are not stored (docs/LEDGER.md,
-- "Rejections are final").  Not part of the ledger's sums nor of the log.
CREATE TABLE usage_rejections (
    id          INTEGER PRIMARY KEY,
    provider    TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    seq         INTEGER CHECK (seq IS NULL OR typeof(seq) = 'integer'),
    sha256      BLOB NOT NULL CHECK (length(sha256) = 32),
    reason      TEXT NOT NULL,
    received_us INTEGER NOT NULL CHECK (typeof(received_us) = 'integer'),
    UNIQUE (provider, record_id)
);
CREATE TRIGGER usage_rejections_no_update BEFORE UPDATE ON usage_rejections
BEGIN SELECT RAISE(ABORT, 'the rejections table is append-only'); END;
CREATE TRIGGER usage_rejections_no_delete BEFORE DELETE ON usage_rejections
BEGIN SELECT RAISE(ABORT, 'the rejections table is append-only'); END;
