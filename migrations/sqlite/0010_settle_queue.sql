-- 0010: the gate's durable retry queue (SPEC section 2, "Every admitted
-- charge is bookable").  A gated request that was served but whose
-- settlement could not be booked (disk full, I/O error, a store fault) is
-- kept here, one row per settlement, until a retry books its records; the
-- row is deleted in the same transaction as the records are inserted, so a
-- settlement is booked exactly once (its record ids are fixed when it is
-- queued, and the ledger's UNIQUE(provider, record_id) refuses a second).
CREATE TABLE settle_queue (
    id              INTEGER PRIMARY KEY,
    record_base     TEXT NOT NULL UNIQUE,  -- ids are record_base || '-in' / '-out'
    provider        TEXT NOT NULL,
    institution     TEXT NOT NULL,
    project         TEXT NOT NULL,
    member          TEXT NOT NULL,
    model           TEXT NOT NULL,
    tokens_in       INTEGER NOT NULL CHECK (typeof(tokens_in) = 'integer' AND tokens_in >= 0),
    tokens_out      INTEGER NOT NULL CHECK (typeof(tokens_out) = 'integer' AND tokens_out >= 0),
    start_us        INTEGER NOT NULL CHECK (typeof(start_us) = 'integer'),
    end_us          INTEGER NOT NULL CHECK (typeof(end_us) = 'integer' AND end_us >= start_us),
    charter_version INTEGER NOT NULL CHECK (typeof(charter_version) = 'integer'),
    queued_us       INTEGER NOT NULL,
    reason          TEXT NOT NULL DEFAULT ''
);
