-- 0008: drop usage_gate_ids, the partial index on record_id of the gate's
-- settlements.  Its one reader is a token's max_credits sum, which the gate
-- now reads from the ledger once per token and then keeps in memory
-- (gate/gate.c, "spent"); that read walks the (provider, record_id) unique
-- index one provider at a time instead (store/sqlite_tokens.c).  Every
-- settlement had paid one more b-tree insert per row and one more page per
-- commit for it (docs/BENCH_GATE.md).
DROP INDEX IF EXISTS usage_gate_ids;
