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
