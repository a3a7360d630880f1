-- 0005_budgets.sql — budgets tier A: several allotd nodes on one database,
-- zero overshoot (issue 13; docs/POSTGRES.md, "Budgets in the database").
--
-- The invariant, per level and period, under `hard`:
--     settled + reserved <= allocation
-- is kept by conditional UPDATEs in allot_reserve alone.  Every function
-- here that locks budget rows locks them in one global order: rank (pool 0,
-- institution 1, project 2, member 3, token 4), then level, period_start,
-- period_end (allot_level_rank), so nothing deadlocks.  A booking
-- transaction holds ledger_bounds and the log head before it touches any
-- budget row; allot_reserve takes ledger_bounds (FOR SHARE) only to create
-- rows, before it locks any budget row.

-- One row per level and period.  level: '*' (the pool), 'inst',
-- 'inst/proj', 'inst/proj/member' or 'token:<jti>'.  allocation: what
-- settled + reserved may reach (allocation + rollover, plus the grace under
-- soft overage; a token's max_credits), set by the charter version in
-- charter_version (a newer version replaces it).  settled: the charges
-- booked in ledger buckets [bucket_from, bucket_to) at that level (kept by
-- every booking transaction, allot_budget_book; a token's: its gate
-- charges).  reserved: the open reservations' amounts.
CREATE TABLE budgets (
    level           TEXT COLLATE "C" NOT NULL,
    period_start    BIGINT NOT NULL,
    period_end      BIGINT NOT NULL,
    bucket_from     BIGINT NOT NULL,
    bucket_to       BIGINT NOT NULL,
    allocation      BIGINT NOT NULL,
    charter_version BIGINT NOT NULL,
    settled         BIGINT NOT NULL,
    reserved        BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    CHECK (period_end > period_start),
    PRIMARY KEY (level, period_start, period_end)
);
CREATE INDEX budgets_by_level_bucket ON budgets(level, bucket_from, bucket_to);

-- One row per admitted request in flight (tier A).  node: the node's
-- registration (its owner session's application_name, store/pg_owner.c).
-- levels/starts/ends: the budget rows it holds amount at.  expires_us: when
-- any node may release it: admission + the longest request + a margin for
-- clocks (docs/POSTGRES.md, "Expiry").
CREATE TABLE reservations (
    id         TEXT COLLATE "C" PRIMARY KEY,
    node       TEXT NOT NULL,
    levels     TEXT[] NOT NULL,
    starts     BIGINT[] NOT NULL,
    ends       BIGINT[] NOT NULL,
    amount     BIGINT NOT NULL CHECK (amount >= 0),
    created_us BIGINT NOT NULL,
    expires_us BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()  -- the server's clock
);
CREATE INDEX reservations_by_expiry ON reservations(expires_us);
CREATE INDEX reservations_by_level ON reservations USING gin (levels);

-- Requests and tokens per minute per level, across nodes: the current
-- window of each level that sets a rate limit (guarded by the level's
-- budget row lock in allot_reserve).
CREATE TABLE rate_windows (
    level        TEXT COLLATE "C" PRIMARY KEY,
    window_start BIGINT NOT NULL,
    requests     BIGINT NOT NULL,
    tokens       BIGINT NOT NULL
);

CREATE FUNCTION allot_level_rank(l TEXT) RETURNS INT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN l = '*' THEN 0
                WHEN l LIKE 'token:%' THEN 4
                ELSE least(3, 1 + length(l) - length(replace(l, '/', ''))) END
$$;

-- What a new row's settled starts from: the ledger's charges at the level
-- in buckets [bfrom, bto), or a token's gate charges (as store_token_spent).
-- Called under ledger_bounds FOR SHARE: no booking is half-way.
CREATE FUNCTION allot_level_settled(l TEXT, bfrom BIGINT, bto BIGINT) RETURNS BIGINT
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s NUMERIC;
    i TEXT := split_part(l, '/', 1);
    p TEXT := split_part(l, '/', 2);
    m TEXT;
    lo TEXT;
    hi TEXT;
BEGIN
    IF l LIKE 'token:%' THEN
        lo := 'gate:' || substr(l, 7) || ':';
        hi := 'gate:' || substr(l, 7) || ';';
        WITH RECURSIVE pv(provider) AS (
            SELECT min(provider) FROM usage_records
            UNION ALL
            SELECT (SELECT min(u.provider) FROM usage_records u WHERE u.provider > pv.provider)
            FROM pv WHERE pv.provider IS NOT NULL)
        SELECT coalesce(sum(u.charge_micro), 0) INTO s FROM pv JOIN usage_records u
            ON u.provider = pv.provider AND u.record_id >= lo AND u.record_id < hi
        WHERE u.source = 'gate';
    ELSIF l = '*' THEN
        SELECT coalesce(sum(charge), 0) INTO s FROM usage_buckets
        WHERE bucket >= bfrom AND bucket < bto;
    ELSIF allot_level_rank(l) = 1 THEN
        SELECT coalesce(sum(charge), 0) INTO s FROM usage_buckets
        WHERE institution = i AND bucket >= bfrom AND bucket < bto;
    ELSIF allot_level_rank(l) = 2 THEN
        SELECT coalesce(sum(charge), 0) INTO s FROM usage_buckets
        WHERE institution = i AND project = p AND bucket >= bfrom AND bucket < bto;
    ELSE
        m := substr(l, length(i) + length(p) + 3);
        SELECT coalesce(sum(charge), 0) INTO s FROM usage_buckets
        WHERE institution = i AND project = p AND member = m
          AND bucket >= bfrom AND bucket < bto;
    END IF;
    RETURN s::BIGINT;
END
$$;

-- Locks the budget rows (level, start, end) in the global order.
CREATE FUNCTION allot_budget_lock(p_levels TEXT[], p_starts BIGINT[], p_ends BIGINT[])
RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM budgets b
        JOIN unnest(p_levels, p_starts, p_ends) AS x(l, s0, e0)
          ON b.level = x.l AND b.period_start = x.s0 AND b.period_end = x.e0
        ORDER BY allot_level_rank(b.level), b.level, b.period_start, b.period_end
        FOR UPDATE OF b;
END
$$;

-- Admission, one round trip.  p_levels etc.: one entry per level in rank
-- order (pool, institution, project, member, token).  Creates the rows of
-- new periods, locks the rows in the global order, and for each level in
-- order checks its concurrency and rate limits (NULL: none) and adds
-- p_amount to reserved only where settled + reserved + p_amount <=
-- allocation.  If a level refuses, the levels before it are given back:
-- nothing changes.  Returns one row per level looked at, in order; the
-- last has why <> '' when it refused ('quota', 'concurrency', 'requests',
-- 'tokens'), with the figures found (n: the count for a limit).
CREATE FUNCTION allot_reserve(p_id TEXT, p_node TEXT, p_levels TEXT[], p_starts BIGINT[],
                              p_ends BIGINT[], p_bfrom BIGINT[], p_bto BIGINT[],
                              p_caps BIGINT[], p_version BIGINT, p_amount BIGINT,
                              p_conc BIGINT[], p_rpm BIGINT[], p_tpm BIGINT[],
                              p_tokens BIGINT, p_window BIGINT, p_now BIGINT,
                              p_expires BIGINT)
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
              AND b.settled::NUMERIC + b.reserved + p_amount <=
                  CASE WHEN b.charter_version < p_version THEN p_caps[i] ELSE b.allocation END
            RETURNING b.settled, b.reserved, b.allocation INTO s, r, a;
            IF NOT FOUND THEN
                refused := 'quota';
            END IF;
        END IF;
        IF refused <> '' THEN
            SELECT b.settled, b.reserved,
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
            -- a node whose clock is behind never starts a newer minute over
            WHERE w.window_start <= excluded.window_start;
        END IF;
    END LOOP;
    INSERT INTO reservations(id, node, levels, starts, ends, amount, created_us, expires_us)
    VALUES (p_id, p_node, p_levels, p_starts, p_ends, p_amount, p_now, p_expires);
END
$$;

-- Settlement, inside the booking transaction (before its COMMIT, with its
-- ledger rows): each reservation p_resv[i] whose row is still there is
-- deleted and gives back its amount (its token level settles p_actual[i]);
-- each bucket charge (inst, proj, member, bucket, charge) of the
-- transaction is added to settled at every level row whose buckets hold
-- it.  The rows are locked in the global order, then updated.
CREATE FUNCTION allot_budget_book(p_resv TEXT[], p_actual BIGINT[], p_inst TEXT[],
                                  p_proj TEXT[], p_member TEXT[], p_bucket BIGINT[],
                                  p_charge BIGINT[])
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    lv TEXT[];
    ss BIGINT[];
    es BIGINT[];
    dr BIGINT[];
    dsum BIGINT[];
BEGIN
    WITH gone AS (
        DELETE FROM reservations r
        USING unnest(coalesce(p_resv, '{}'), coalesce(p_actual, '{}')) AS x(id, actual)
        WHERE r.id = x.id
        RETURNING r.levels, r.starts, r.ends, r.amount, x.actual),
    rel AS (
        SELECT y.l, y.s0, y.e0, -g.amount AS d_res,
               CASE WHEN y.l LIKE 'token:%' THEN g.actual ELSE 0 END AS d_set
        FROM gone g, unnest(g.levels, g.starts, g.ends) AS y(l, s0, e0)),
    bk AS (
        SELECT b.level AS l, b.period_start AS s0, b.period_end AS e0, 0::BIGINT AS d_res,
               d.charge AS d_set
        FROM unnest(coalesce(p_inst, '{}'), coalesce(p_proj, '{}'), coalesce(p_member, '{}'),
                    coalesce(p_bucket, '{}'), coalesce(p_charge, '{}'))
             AS d(inst, proj, member, bucket, charge)
        JOIN budgets b
          ON b.level IN ('*', d.inst, d.inst || '/' || d.proj,
                         CASE WHEN d.member <> '' THEN d.inst || '/' || d.proj || '/' || d.member END)
         AND d.bucket >= b.bucket_from AND d.bucket < b.bucket_to),
    agg AS (
        SELECT u.l, u.s0, u.e0, sum(u.d_res)::BIGINT AS d_res, sum(u.d_set)::BIGINT AS d_set
        FROM (SELECT * FROM rel UNION ALL SELECT * FROM bk) u GROUP BY 1, 2, 3)
    SELECT array_agg(l), array_agg(s0), array_agg(e0), array_agg(d_res), array_agg(d_set)
    INTO lv, ss, es, dr, dsum FROM agg;
    IF lv IS NULL THEN
        RETURN;
    END IF;
    PERFORM allot_budget_lock(lv, ss, es);
    UPDATE budgets b SET reserved = b.reserved + x.d_res, settled = b.settled + x.d_set
    FROM unnest(lv, ss, es, dr, dsum) AS x(l, s0, e0, d_res, d_set)
    WHERE b.level = x.l AND b.period_start = x.s0 AND b.period_end = x.e0;
END
$$;

-- Releases, in its own transaction, the reservations that expired before
-- p_now, and with p_dead those of nodes that died: made while this server
-- ran (so their node was registered then) by a node whose registration
-- session is gone now.  After a server restart no registration is left,
-- so what was made before it waits for its expiry.  Returns how many.
CREATE FUNCTION allot_budget_sweep(p_now BIGINT, p_dead BOOLEAN) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    lv TEXT[];
    ss BIGINT[];
    es BIGINT[];
    am BIGINT[];
    n BIGINT;
BEGIN
    WITH gone AS (
        DELETE FROM reservations WHERE id IN (
            SELECT id FROM reservations
            WHERE expires_us < p_now
               OR (p_dead AND created_at > pg_postmaster_start_time()
                   AND node NOT IN (SELECT a.application_name FROM pg_stat_activity a
                                    WHERE a.datname = current_database()
                                      AND a.application_name IS NOT NULL))
            FOR UPDATE SKIP LOCKED)
        RETURNING levels, starts, ends, amount),
    agg AS (
        SELECT y.l, y.s0, y.e0, sum(g.amount)::BIGINT AS amt
        FROM gone g, unnest(g.levels, g.starts, g.ends) AS y(l, s0, e0) GROUP BY 1, 2, 3)
    SELECT array_agg(l), array_agg(s0), array_agg(e0), array_agg(amt),
           (SELECT count(*) FROM gone)
    INTO lv, ss, es, am, n
    FROM agg;
    IF lv IS NULL THEN
        RETURN coalesce(n, 0);
    END IF;
    PERFORM allot_budget_lock(lv, ss, es);
    UPDATE budgets b SET reserved = b.reserved - x.amt
    FROM unnest(lv, ss, es, am) AS x(l, s0, e0, amt)
    WHERE b.level = x.l AND b.period_start = x.s0 AND b.period_end = x.e0;
    RETURN n;
END
$$;
