-- 0010 (issue 13, the gate's settlements on PostgreSQL): a booking group's
-- allot_budget_book in fewer statements (docs/BENCH_PG.md, "The booking
-- function in fewer statements").
--
-- pg_stat_statements put allot_budget_book at about 320 µs a group, nearly
-- half of the server's time per booking group, of which its statements'
-- own execution was about 180 µs: the rest was the function's statements
-- one by one (a cursor over the leases, a lock and an update per lease,
-- a call of allot_budget_lock with its own settings).  Same effects, same
-- lock order, fewer statements:
-- 1. the leases: one statement locks the group's lease rows in id order
--    (FOR UPDATE above the sort: rows are locked as the sort returns
--    them) and moves min(actual, size - spent) of each live one (its
--    node's epoch current) to its spent, as 0006's loop did;
-- 2. the deltas per budget row: unchanged (0006);
-- 3. one statement locks the budget rows in the global order (rank,
--    level, period: allot_budget_lock's) and updates them; the lock is
--    taken by its sub-select, whose rows come sorted from a sort below
--    the lock, so every plan locks them in that order before any is
--    updated or as each is.
-- Lease rows are locked before budget rows, as before.
CREATE OR REPLACE FUNCTION allot_budget_book(p_resv TEXT[], p_actual BIGINT[], p_inst TEXT[],
                                             p_proj TEXT[], p_member TEXT[], p_bucket BIGINT[],
                                             p_charge BIGINT[])
RETURNS VOID LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    lv TEXT[];
    ss BIGINT[];
    es BIGINT[];
    dr BIGINT[];
    dsum BIGINT[];
    dl BIGINT[];
    ll TEXT[];
    ls BIGINT[];
    le BIGINT[];
    lm BIGINT[];
BEGIN
    WITH lr AS (
        SELECT split_part(u.id, ':', 2)::BIGINT AS lid, split_part(u.id, ':', 3)::BIGINT AS ep,
               sum(u.actual)::BIGINT AS actual
        FROM unnest(coalesce(p_resv, '{}'), coalesce(p_actual, '{}')) AS u(id, actual)
        WHERE u.id LIKE 'lease:%' GROUP BY 1, 2),
    k AS (
        SELECT l.id, least(greatest(lr.actual, 0), l.size - l.spent) AS m
        FROM lr JOIN leases l ON l.id = lr.lid AND l.epoch = lr.ep
        JOIN nodes n ON n.node_id = l.node AND n.epoch = l.epoch
        ORDER BY l.id FOR UPDATE OF l),
    moved AS (
        UPDATE leases l SET spent = l.spent + k.m FROM k WHERE l.id = k.id AND k.m > 0
        RETURNING l.level, l.period_start, l.period_end, k.m)
    SELECT array_agg(level), array_agg(period_start), array_agg(period_end), array_agg(m)
    INTO ll, ls, le, lm FROM moved;
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
        FROM unnest(coalesce(ll, '{}'), coalesce(ls, '{}'), coalesce(le, '{}'),
                    coalesce(lm, '{}')) AS z(l, s0, e0, m)),
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
    UPDATE budgets b SET reserved = b.reserved + x.d_res, settled = b.settled + x.d_set,
                         leased = b.leased + x.d_lea
    FROM (SELECT b2.level, b2.period_start, b2.period_end FROM budgets b2
          JOIN unnest(lv, ss, es) AS y(l, s0, e0)
            ON b2.level = y.l AND b2.period_start = y.s0 AND b2.period_end = y.e0
          ORDER BY allot_level_rank(b2.level), b2.level, b2.period_start, b2.period_end
          FOR UPDATE OF b2) k,
         unnest(lv, ss, es, dr, dsum, dl) AS x(l, s0, e0, d_res, d_set, d_lea)
    WHERE k.level = x.l AND k.period_start = x.s0 AND k.period_end = x.e0
      AND b.level = x.l AND b.period_start = x.s0 AND b.period_end = x.e0;
END
$$;
