-- 0008 (pgcpu, issue 13): the budget functions keep one plan per statement.
--
-- PL/pgSQL caches each statement's plan, but with plan_cache_mode = auto
-- a statement over array parameters (unnest of the settlement's ids,
-- amounts and deltas) is planned again on every call: its custom plans
-- look cheaper than the generic one, whose arrays have no known length.
-- pg_stat_statements (docs/BENCH_PG.md, "Where the CPU goes") showed the
-- settlement's release-and-book statement in allot_budget_book spending
-- about 0.4 ms planning per booking group against 0.03 ms running.  These
-- functions' statements touch a handful of rows through primary keys
-- whatever the arrays hold, so the generic plan is the plan: forced here
-- for the statements run inside them (the SET applies for the call only).
ALTER FUNCTION allot_budget_book(TEXT[], BIGINT[], TEXT[], TEXT[], TEXT[], BIGINT[], BIGINT[])
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION allot_budget_lock(TEXT[], BIGINT[], BIGINT[])
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION allot_reserve(TEXT, TEXT, TEXT[], BIGINT[], BIGINT[], BIGINT[], BIGINT[], BIGINT[],
                             BIGINT, BIGINT, BIGINT[], BIGINT[], BIGINT[], BIGINT, BIGINT, BIGINT,
                             BIGINT, BOOLEAN)
    SET plan_cache_mode = force_generic_plan;

-- A booking group's first read (store/pg_ledger.c): the bounds row locked,
-- then the ledger's totals read, as the node used to send them in one
-- multi-statement query that the server parsed and planned in every group.
-- Here each statement's plan is kept for the session.  The read is a
-- statement of its own after the lock: in READ COMMITTED a VOLATILE
-- function's statements each take a new snapshot, so it sees every row
-- committed before the lock was granted.  The rows after upto are bounded
-- above by the last row as well: with `id > b.upto` alone the planner
-- guesses a third of the table and scans all of it (a sequential scan of
-- usage_records in every group, growing with the ledger); with both ends it
-- reads the (usually no) rows by the primary key.  Every visible row's id
-- is at most the visible max(id), so the rows are the same.
CREATE FUNCTION allot_ledger_bounds_take(OUT o_charge BIGINT, OUT o_quantity BIGINT,
                                         OUT o_tail_charge BIGINT, OUT o_tail_quantity BIGINT)
VOLATILE LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM ledger_bounds WHERE id = 1 FOR UPDATE;
    SELECT b.charge_pos, b.quantity, t.c, t.q
      INTO o_charge, o_quantity, o_tail_charge, o_tail_quantity
      FROM ledger_bounds b,
           LATERAL (SELECT coalesce(sum(u.charge_micro) FILTER (WHERE u.charge_micro > 0), 0) AS c,
                           coalesce(sum(u.quantity), 0) AS q
                    FROM usage_records u
                    WHERE u.id > b.upto AND u.id <= (SELECT max(id) FROM usage_records)) t
     WHERE b.id = 1;
END
$$;
