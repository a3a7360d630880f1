-- 0014: the webhook outbox (SPEC section 4, docs/WEBHOOKS.md).  An event is
-- written here in the same transaction as what causes it (the booking that
-- crosses an alert threshold or goes past an allocation), one row per
-- receiving URL, and a delivery worker sends it until the receiver answers
-- 2xx: at least once, across crashes.  id is the webhook-id header, the same
-- on every attempt.  UNIQUE(dedupe, url): an event that must be sent once
-- (a threshold crossed once per level, period and threshold) is inserted
-- with INSERT OR IGNORE under its dedupe key.
CREATE TABLE webhook_outbox (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    url          TEXT NOT NULL,
    type         TEXT NOT NULL CHECK (type IN ('alert', 'overage', 'charter', 'settlement_failed')),
    dedupe       TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_us   INTEGER NOT NULL CHECK (typeof(created_us) = 'integer'),
    next_us      INTEGER NOT NULL CHECK (typeof(next_us) = 'integer'),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (typeof(attempts) = 'integer' AND attempts >= 0),
    delivered_us INTEGER,
    last_error   TEXT NOT NULL DEFAULT '',
    UNIQUE (dedupe, url)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox(next_us) WHERE delivered_us IS NULL;
