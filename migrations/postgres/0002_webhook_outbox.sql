-- 0002: the webhook outbox, as SQLite's 0014 (docs/WEBHOOKS.md): an event
-- written in the transaction that causes it, one row per receiving URL,
-- sent until the receiver answers 2xx.  UNIQUE(dedupe, url): an event sent
-- once per level, period and threshold is inserted with ON CONFLICT DO
-- NOTHING under its dedupe key.
CREATE TABLE webhook_outbox (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    url          TEXT NOT NULL,
    type         TEXT NOT NULL CHECK (type IN ('alert', 'overage', 'charter', 'settlement_failed')),
    dedupe       TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_us   BIGINT NOT NULL,
    next_us      BIGINT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    delivered_us BIGINT,
    last_error   TEXT NOT NULL DEFAULT '',
    UNIQUE (dedupe, url)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox(next_us) WHERE delivered_us IS NULL;
