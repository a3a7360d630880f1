-- 0006_leases.sql — budgets tier B: node epochs and leases (issue 13;
-- docs/POSTGRES.md, "Leases and epochs").
--
-- The invariant, per level and period, under `hard`, becomes
--     settled + reserved + leased <= allocation
-- where leased is what the open leases still hold (the sum of their
-- size - spent).  It is kept by conditional UPDATEs here alone.  Lock
-- order, everywhere: ledger_bounds, the log head, lease rows (by id), then
-- budget rows (allot_budget_lock's order: rank, level, period).  A
-- function that does not need one of them skips it, never reorders.

-- One row per node (a stable name: the allotd's --node, else its host and
-- port).  epoch: bumped at every start of the node (allot_node_start); a
-- lease carries the epoch it was taken under, and a top-up, a settlement
-- or a return under an older epoch than the row's is refused (the lease is
-- fenced: it waits for its expiry).  heartbeat_us: the node's clock at its
-- last take, top-up or heartbeat; nodes seen within the caller's window
-- are "live" for the fair share.
CREATE TABLE nodes (
    node_id      TEXT COLLATE "C" PRIMARY KEY,
    epoch        BIGINT NOT NULL CHECK (epoch >= 1),
    heartbeat_us BIGINT NOT NULL
);

ALTER TABLE budgets ADD COLUMN leased BIGINT NOT NULL DEFAULT 0 CHECK (leased >= 0);

-- A lease: size micro-credits of one budget row subtracted (budgets.leased)
-- for one node incarnation (node, epoch), spent in that node's memory;
-- spent: what settlements under it have moved from leased to settled.  The
-- lease holds size - spent of its row's leased.  expires_us: the holder
-- admits from it only before then; any node returns it once expires_us +
-- the longest request has passed (allot_lease_sweep).
CREATE TABLE leases (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node         TEXT COLLATE "C" NOT NULL,
    epoch        BIGINT NOT NULL,
    level        TEXT COLLATE "C" NOT NULL,
    period_start BIGINT NOT NULL,
    period_end   BIGINT NOT NULL,
    size         BIGINT NOT NULL CHECK (size >= 0),
    spent        BIGINT NOT NULL DEFAULT 0 CHECK (spent >= 0 AND spent <= size),
    expires_us   BIGINT NOT NULL,
    FOREIGN KEY (level, period_start, period_end)
        REFERENCES budgets (level, period_start, period_end)
);
CREATE INDEX leases_by_expiry ON leases(expires_us);
CREATE INDEX leases_by_node ON leases(node, epoch);

-- A node's start: its new epoch (1 the first time).
CREATE FUNCTION allot_node_start(p_node TEXT, p_now BIGINT) RETURNS BIGINT
LANGUAGE sql AS $$
    INSERT INTO nodes AS n(node_id, epoch, heartbeat_us) VALUES (p_node, 1, p_now)
    ON CONFLICT (node_id) DO UPDATE SET epoch = n.epoch + 1, heartbeat_us = excluded.heartbeat_us
    RETURNING epoch
$$;

-- A node's heartbeat: false (nothing written) when p_epoch is not the
-- node's epoch any more (a newer incarnation started: this one is fenced).
CREATE FUNCTION allot_node_heartbeat(p_node TEXT, p_epoch BIGINT, p_now BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE nodes SET heartbeat_us = greatest(heartbeat_us, p_now)
    WHERE node_id = p_node AND epoch = p_epoch;
    RETURN FOUND;
END
$$;

-- Admission of tier A (0005's allot_reserve), with leased in the
-- invariant, o_reserved the room held (reserved + leased), and, when
-- p_registered, the node's registration checked first: a node whose owner
-- session is gone (a server restart) is refused (SQLSTATE 57P03, the
-- store's "unavailable") until it registers again, since a sweep would
-- take its reservations for a dead node's.
DROP FUNCTION allot_reserve(TEXT, TEXT, TEXT[], BIGINT[], BIGINT[], BIGINT[], BIGINT[], BIGINT[],
                            BIGINT, BIGINT, BIGINT[], BIGINT[], BIGINT[], BIGINT, BIGINT, BIGINT,
                            BIGINT);
CREATE FUNCTION allot_reserve(p_id TEXT, p_node TEXT, p_levels TEXT[], p_starts BIGINT[],
                              p_ends BIGINT[], p_bfrom BIGINT[], p_bto BIGINT[],
                              p_caps BIGINT[], p_version BIGINT, p_amount BIGINT,
                              p_conc BIGINT[], p_rpm BIGINT[], p_tpm BIGINT[],
                              p_tokens BIGINT, p_window BIGINT, p_now BIGINT,
                              p_expires BIGINT, p_registered BOOLEAN)
RETURNS TABLE(why TEXT, o_settled BIGINT, o_reserved BIGINT, o_allocation BIGINT, o_n BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    k INT := coalesce(array_length(p_levels, 1), 0);
    i INT;
    j INT;
    missing BOOLEAN := false;
    cnt BIGINT;
    rq BIGINT;
    tk BIGINT;
    s BIGINT;
    r BIGINT;
    a BIGINT;
    refused TEXT := '';
BEGIN
    IF k = 0 OR p_amount IS NULL OR p_amount < 0 OR p_id IS NULL
       OR array_length(p_starts, 1) IS DISTINCT FROM k OR array_length(p_ends, 1) IS DISTINCT FROM k
       OR array_length(p_bfrom, 1) IS DISTINCT FROM k OR array_length(p_bto, 1) IS DISTINCT FROM k
       OR array_length(p_caps, 1) IS DISTINCT FROM k OR array_length(p_conc, 1) IS DISTINCT FROM k
       OR array_length(p_rpm, 1) IS DISTINCT FROM k OR array_length(p_tpm, 1) IS DISTINCT FROM k THEN
        RAISE EXCEPTION 'allot_reserve: bad arguments' USING ERRCODE = '22023';
    END IF;
    IF p_registered AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                                    WHERE a.datname = current_database()
                                      AND a.application_name = p_node) THEN
        RAISE EXCEPTION 'this node is not registered on the database (it registers again)'
            USING ERRCODE = '57P03';
    END IF;
    FOR i IN 1..k LOOP
        IF i > 1 AND allot_level_rank(p_levels[i]) <= allot_level_rank(p_levels[i - 1]) THEN
            RAISE EXCEPTION 'allot_reserve: levels out of order' USING ERRCODE = '22023';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM budgets b WHERE b.level = p_levels[i]
                       AND b.period_start = p_starts[i] AND b.period_end = p_ends[i]) THEN
            missing := true;
        END IF;
    END LOOP;
    IF missing THEN
        -- No booking is between its records and its budget update now.
        PERFORM 1 FROM ledger_bounds WHERE id = 1 FOR SHARE;
        FOR i IN 1..k LOOP
            IF NOT EXISTS (SELECT 1 FROM budgets b WHERE b.level = p_levels[i]
                           AND b.period_start = p_starts[i] AND b.period_end = p_ends[i]) THEN
                INSERT INTO budgets(level, period_start, period_end, bucket_from, bucket_to,
                                    allocation, charter_version, settled)
                VALUES (p_levels[i], p_starts[i], p_ends[i], p_bfrom[i], p_bto[i], p_caps[i],
                        p_version, allot_level_settled(p_levels[i], p_bfrom[i], p_bto[i]))
                ON CONFLICT DO NOTHING;
            END IF;
        END LOOP;
    END IF;
    PERFORM allot_budget_lock(p_levels, p_starts, p_ends);
    FOR i IN 1..k LOOP
        cnt := 0;
        IF p_conc[i] IS NOT NULL THEN
            SELECT count(*) INTO cnt FROM reservations WHERE levels @> ARRAY[p_levels[i]];
            IF cnt + 1 > p_conc[i] THEN
                refused := 'concurrency';
            END IF;
        END IF;
        IF refused = '' AND (p_rpm[i] IS NOT NULL OR p_tpm[i] IS NOT NULL) THEN
            SELECT w.requests, w.tokens INTO rq, tk FROM rate_windows w
            WHERE w.level = p_levels[i] AND w.window_start = p_window;
            rq := coalesce(rq, 0);
            tk := coalesce(tk, 0);
            IF p_rpm[i] IS NOT NULL AND rq + 1 > p_rpm[i] THEN
                refused := 'requests';
                cnt := rq;
            ELSIF p_tpm[i] IS NOT NULL AND tk + p_tokens > p_tpm[i] THEN
                refused := 'tokens';
                cnt := tk;
            END IF;
        END IF;
        IF refused = '' THEN
            UPDATE budgets b SET reserved = b.reserved + p_amount,
                allocation = CASE WHEN b.charter_version < p_version THEN p_caps[i]
                                  ELSE b.allocation END,
                charter_version = greatest(b.charter_version, p_version)
            WHERE b.level = p_levels[i] AND b.period_start = p_starts[i]
              AND b.period_end = p_ends[i]
              AND b.settled::NUMERIC + b.reserved + b.leased + p_amount <=
                  CASE WHEN b.charter_version < p_version THEN p_caps[i] ELSE b.allocation END
            RETURNING b.settled, b.reserved + b.leased, b.allocation INTO s, r, a;
            IF NOT FOUND THEN
                refused := 'quota';
            END IF;
        END IF;
        IF refused <> '' THEN
            SELECT b.settled, b.reserved + b.leased,
                   CASE WHEN b.charter_version < p_version THEN p_caps[i] ELSE b.allocation END
            INTO s, r, a FROM budgets b WHERE b.level = p_levels[i]
              AND b.period_start = p_starts[i] AND b.period_end = p_ends[i];
            -- Give back what the levels before took: nothing changed.
            FOR j IN 1..i - 1 LOOP
                UPDATE budgets b SET reserved = b.reserved - p_amount
                WHERE b.level = p_levels[j] AND b.period_start = p_starts[j]
                  AND b.period_end = p_ends[j];
            END LOOP;
            RETURN QUERY SELECT refused, s, r, a, cnt;
            RETURN;
        END IF;
        RETURN QUERY SELECT ''::TEXT, s, r, a, cnt;
    END LOOP;
    FOR i IN 1..k LOOP
        IF p_rpm[i] IS NOT NULL OR p_tpm[i] IS NOT NULL THEN
            INSERT INTO rate_windows AS w(level, window_start, requests, tokens)
            VALUES (p_levels[i], p_window, 1, p_tokens)
            ON CONFLICT (level) DO UPDATE SET
                requests = CASE WHEN w.window_start = excluded.window_start
                                THEN w.requests + 1 ELSE 1 END,
                tokens = CASE WHEN w.window_start = excluded.window_start
                              THEN w.tokens + excluded.tokens ELSE excluded.tokens END,
                window_start = excluded.window_start
            WHERE w.window_start <= excluded.window_start;
        END IF;
    END LOOP;
    INSERT INTO reservations(id, node, levels, starts, ends, amount, created_us, expires_us)
    VALUES (p_id, p_node, p_levels, p_starts, p_ends, p_amount, p_now, p_expires);
END
$$;

-- Settlement in the booking transaction (0005's allot_budget_book), with
-- leases: an id 'lease:<id>:<epoch>' in p_resv settles p_actual under that
-- lease: min(actual, size - spent) moves from the row's leased to the
-- lease's spent (the charge itself reaches settled with the transaction's
-- bucket charges, as every booking's does).  A lease that is gone or
-- fenced (its epoch older than its node's) moves nothing: the charge is
-- booked all the same (the lease's room was given back whole, or will be).
-- Lease rows are locked (by id) before budget rows.
CREATE OR REPLACE FUNCTION allot_budget_book(p_resv TEXT[], p_actual BIGINT[], p_inst TEXT[],
                                             p_proj TEXT[], p_member TEXT[], p_bucket BIGINT[],
                                             p_charge BIGINT[])
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    lv TEXT[];
    ss BIGINT[];
    es BIGINT[];
    dr BIGINT[];
    dsum BIGINT[];
    dl BIGINT[];
    ll TEXT[] := '{}';
    ls BIGINT[] := '{}';
    le BIGINT[] := '{}';
    lm BIGINT[] := '{}';
    lr RECORD;
    m BIGINT;
    tl TEXT;
    ts BIGINT;
    te BIGINT;
BEGIN
    FOR lr IN
        SELECT split_part(u.id, ':', 2)::BIGINT AS lid, split_part(u.id, ':', 3)::BIGINT AS ep,
               sum(u.actual)::BIGINT AS actual
        FROM unnest(coalesce(p_resv, '{}'), coalesce(p_actual, '{}')) AS u(id, actual)
        WHERE u.id LIKE 'lease:%' GROUP BY 1, 2 ORDER BY 1, 2
    LOOP
        SELECT least(greatest(lr.actual, 0), l.size - l.spent) INTO m
        FROM leases l JOIN nodes n ON n.node_id = l.node AND n.epoch = l.epoch
        WHERE l.id = lr.lid AND l.epoch = lr.ep FOR UPDATE OF l;
        IF FOUND AND m > 0 THEN
            UPDATE leases l SET spent = l.spent + m WHERE l.id = lr.lid
            RETURNING l.level, l.period_start, l.period_end INTO tl, ts, te;
            ll := ll || tl;
            ls := ls || ts;
            le := le || te;
            lm := lm || m;
        END IF;
    END LOOP;
    WITH gone AS (
        DELETE FROM reservations r
        USING unnest(coalesce(p_resv, '{}'), coalesce(p_actual, '{}')) AS x(id, actual)
        WHERE r.id = x.id
        RETURNING r.levels, r.starts, r.ends, r.amount, x.actual),
    rel AS (
        SELECT y.l, y.s0, y.e0, -g.amount AS d_res,
               CASE WHEN y.l LIKE 'token:%' THEN g.actual ELSE 0 END AS d_set,
               0::BIGINT AS d_lea
        FROM gone g, unnest(g.levels, g.starts, g.ends) AS y(l, s0, e0)),
    bk AS (
        SELECT b.level AS l, b.period_start AS s0, b.period_end AS e0, 0::BIGINT AS d_res,
               d.charge AS d_set, 0::BIGINT AS d_lea
        FROM unnest(coalesce(p_inst, '{}'), coalesce(p_proj, '{}'), coalesce(p_member, '{}'),
                    coalesce(p_bucket, '{}'), coalesce(p_charge, '{}'))
             AS d(inst, proj, member, bucket, charge)
        JOIN budgets b
          ON b.level IN ('*', d.inst, d.inst || '/' || d.proj,
                         CASE WHEN d.member <> '' THEN d.inst || '/' || d.proj || '/' || d.member END)
         AND d.bucket >= b.bucket_from AND d.bucket < b.bucket_to),
    lz AS (
        SELECT z.l, z.s0, z.e0, 0::BIGINT AS d_res, 0::BIGINT AS d_set, -z.m AS d_lea
        FROM unnest(ll, ls, le, lm) AS z(l, s0, e0, m)),
    agg AS (
        SELECT u.l, u.s0, u.e0, sum(u.d_res)::BIGINT AS d_res, sum(u.d_set)::BIGINT AS d_set,
               sum(u.d_lea)::BIGINT AS d_lea
        FROM (SELECT * FROM rel UNION ALL SELECT * FROM bk UNION ALL SELECT * FROM lz) u
        GROUP BY 1, 2, 3)
    SELECT array_agg(l), array_agg(s0), array_agg(e0), array_agg(d_res), array_agg(d_set),
           array_agg(d_lea)
    INTO lv, ss, es, dr, dsum, dl FROM agg;
    IF lv IS NULL THEN
        RETURN;
    END IF;
    PERFORM allot_budget_lock(lv, ss, es);
    UPDATE budgets b SET reserved = b.reserved + x.d_res, settled = b.settled + x.d_set,
                         leased = b.leased + x.d_lea
    FROM unnest(lv, ss, es, dr, dsum, dl) AS x(l, s0, e0, d_res, d_set, d_lea)
    WHERE b.level = x.l AND b.period_start = x.s0 AND b.period_end = x.e0;
END
$$;

-- Takes a lease (p_lease NULL) or tops one up (p_lease: its id) for node
-- p_node under epoch p_epoch at one budget row, creating the row of a new
-- period as allot_reserve does.  Grants least(p_want, room / live) where
-- room = allocation - settled - reserved - leased and live is the number
-- of nodes whose heartbeat is within p_live_us of p_now (at least 1); a
-- top-up also moves the lease's expiry to p_expires.  Returns one row:
-- o_id (-1: fenced, the epoch is not the node's; 0: nothing granted and
-- no lease made), the lease's size, spent and expiry after it, and what
-- was granted now.  A token's level is never leased (its max_credits is
-- one token's, not a busy level's).
CREATE FUNCTION allot_lease_take(p_lease BIGINT, p_node TEXT, p_epoch BIGINT, p_level TEXT,
                                 p_start BIGINT, p_end BIGINT, p_bfrom BIGINT, p_bto BIGINT,
                                 p_cap BIGINT, p_version BIGINT, p_want BIGINT, p_now BIGINT,
                                 p_expires BIGINT, p_live_us BIGINT)
RETURNS TABLE(o_id BIGINT, o_size BIGINT, o_spent BIGINT, o_expires BIGINT, o_granted BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    id0 BIGINT := p_lease;
    live BIGINT;
    room NUMERIC;
    g BIGINT;
    sz BIGINT;
    sp BIGINT;
    ex BIGINT;
BEGIN
    IF p_node IS NULL OR p_level IS NULL OR p_want IS NULL OR p_want < 0 OR p_end <= p_start
       OR p_cap IS NULL OR p_live_us IS NULL OR p_live_us < 0 OR p_level LIKE 'token:%' THEN
        RAISE EXCEPTION 'allot_lease_take: bad arguments' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM budgets b WHERE b.level = p_level
                   AND b.period_start = p_start AND b.period_end = p_end) THEN
        PERFORM 1 FROM ledger_bounds WHERE id = 1 FOR SHARE;
        INSERT INTO budgets(level, period_start, period_end, bucket_from, bucket_to,
                            allocation, charter_version, settled)
        VALUES (p_level, p_start, p_end, p_bfrom, p_bto, p_cap, p_version,
                allot_level_settled(p_level, p_bfrom, p_bto))
        ON CONFLICT DO NOTHING;
    END IF;
    IF id0 IS NOT NULL THEN
        PERFORM 1 FROM leases l WHERE l.id = id0 AND l.node = p_node AND l.epoch = p_epoch
            AND l.level = p_level AND l.period_start = p_start AND l.period_end = p_end
            FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT -1::BIGINT, 0::BIGINT, 0::BIGINT, 0::BIGINT, 0::BIGINT;
            RETURN;
        END IF;
    END IF;
    -- The epoch is checked after the lease row is locked: a node that
    -- starts again meanwhile fences it from here on.
    UPDATE nodes SET heartbeat_us = greatest(heartbeat_us, p_now)
    WHERE node_id = p_node AND epoch = p_epoch;
    IF NOT FOUND THEN
        RETURN QUERY SELECT -1::BIGINT, 0::BIGINT, 0::BIGINT, 0::BIGINT, 0::BIGINT;
        RETURN;
    END IF;
    SELECT greatest(1, count(*)) INTO live FROM nodes WHERE heartbeat_us >= p_now - p_live_us;
    PERFORM allot_budget_lock(ARRAY[p_level], ARRAY[p_start], ARRAY[p_end]);
    SELECT (CASE WHEN b.charter_version < p_version THEN p_cap ELSE b.allocation END)::NUMERIC
           - b.settled - b.reserved - b.leased
    INTO room FROM budgets b
    WHERE b.level = p_level AND b.period_start = p_start AND b.period_end = p_end;
    g := greatest(0, least(p_want::NUMERIC, floor(room / live)))::BIGINT;
    UPDATE budgets b SET leased = b.leased + g,
        allocation = CASE WHEN b.charter_version < p_version THEN p_cap ELSE b.allocation END,
        charter_version = greatest(b.charter_version, p_version)
    WHERE b.level = p_level AND b.period_start = p_start AND b.period_end = p_end
      AND b.settled::NUMERIC + b.reserved + b.leased + g <=
          CASE WHEN b.charter_version < p_version THEN p_cap ELSE b.allocation END;
    IF NOT FOUND THEN
        g := 0;
    END IF;
    IF id0 IS NULL THEN
        IF g = 0 THEN
            RETURN QUERY SELECT 0::BIGINT, 0::BIGINT, 0::BIGINT, 0::BIGINT, 0::BIGINT;
            RETURN;
        END IF;
        INSERT INTO leases(node, epoch, level, period_start, period_end, size, expires_us)
        VALUES (p_node, p_epoch, p_level, p_start, p_end, g, p_expires)
        RETURNING id, size, spent, expires_us INTO id0, sz, sp, ex;
    ELSE
        UPDATE leases l SET size = l.size + g, expires_us = greatest(l.expires_us, p_expires)
        WHERE l.id = id0 RETURNING l.size, l.spent, l.expires_us INTO sz, sp, ex;
    END IF;
    RETURN QUERY SELECT id0, sz, sp, ex, g;
END
$$;

-- Returns a lease of p_node under p_epoch: its size - spent goes back to
-- its row's room and the lease row goes.  Returns what came back, -1 when
-- there is no such lease (returned already, swept, or fenced).
CREATE FUNCTION allot_lease_return(p_lease BIGINT, p_node TEXT, p_epoch BIGINT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    l RECORD;
BEGIN
    SELECT * INTO l FROM leases WHERE id = p_lease AND node = p_node AND epoch = p_epoch
    FOR UPDATE;
    IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.node_id = p_node
                                AND n.epoch = p_epoch) THEN
        RETURN -1;
    END IF;
    PERFORM allot_budget_lock(ARRAY[l.level], ARRAY[l.period_start], ARRAY[l.period_end]);
    UPDATE budgets b SET leased = b.leased - (l.size - l.spent)
    WHERE b.level = l.level AND b.period_start = l.period_start AND b.period_end = l.period_end;
    DELETE FROM leases WHERE id = l.id;
    RETURN l.size - l.spent;
END
$$;

-- Any node: returns the leases whose expiry plus p_grace (the longest
-- request: a request admitted from a lease before its expiry has settled
-- by then) is before p_now, whatever their node or epoch.  Returns how
-- many.
CREATE FUNCTION allot_lease_sweep(p_now BIGINT, p_grace BIGINT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    lv TEXT[];
    ss BIGINT[];
    es BIGINT[];
    am BIGINT[];
    n BIGINT;
BEGIN
    IF p_grace IS NULL OR p_grace < 0 THEN
        RAISE EXCEPTION 'allot_lease_sweep: bad arguments' USING ERRCODE = '22023';
    END IF;
    WITH gone AS (
        DELETE FROM leases WHERE id IN (
            SELECT id FROM leases WHERE expires_us::NUMERIC + p_grace < p_now
            ORDER BY id FOR UPDATE SKIP LOCKED)
        RETURNING level, period_start, period_end, size - spent AS back),
    agg AS (
        SELECT g.level AS l, g.period_start AS s0, g.period_end AS e0, sum(g.back)::BIGINT AS amt
        FROM gone g GROUP BY 1, 2, 3)
    SELECT array_agg(l), array_agg(s0), array_agg(e0), array_agg(amt),
           (SELECT count(*) FROM gone)
    INTO lv, ss, es, am, n
    FROM agg;
    IF lv IS NULL THEN
        RETURN coalesce(n, 0);
    END IF;
    PERFORM allot_budget_lock(lv, ss, es);
    UPDATE budgets b SET leased = b.leased - x.amt
    FROM unnest(lv, ss, es, am) AS x(l, s0, e0, amt)
    WHERE b.level = x.l AND b.period_start = x.s0 AND b.period_end = x.e0;
    RETURN n;
END
$$;
