-- 0009 (issue 13, bytes per record): a usage record's kind and source
-- are one-letter codes, its late and overage flags booleans; the index of
-- an institution's records by time keys them by 2^30 µs (about 18 min).
--
-- Text spent 6-11 bytes on a record's kind ('usage', 'adjustment',
-- 'void') and 5-9 on its source ('provider', 'gate'); a "char" spends one,
-- and a boolean one where a SMALLINT spent two: 15 bytes less per record
-- (bench/ingest: 415 -> 400 bytes on disk per provider record, tables and
-- indexes; docs/BENCH_PG.md).  The codes are the names' first letters:
-- kind u(sage), a(djustment), v(oid); source p(rovider), g(ate).  The
-- store maps them to and from the names (store/pg_ledger_rows.c,
-- pg_code_name and pg_code_of), `allot store copy` too; SQLite keeps the
-- names.  The table is rewritten once here (ALTER ... TYPE), in this
-- migration's transaction.
--
-- The four columns' CHECK constraints go first (their names carry the
-- suffix 0007's rebuild gave them: found by their columns).
DO $$
DECLARE
    c RECORD;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'usage_records'::regclass AND contype = 'c'
               AND conkey && ARRAY(SELECT attnum FROM pg_attribute
                                   WHERE attrelid = 'usage_records'::regclass
                                     AND attname IN ('kind', 'source', 'late', 'overage'))
    LOOP
        EXECUTE format('ALTER TABLE usage_records DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;
ALTER TABLE usage_records ALTER COLUMN source DROP DEFAULT,
    ALTER COLUMN late DROP DEFAULT,
    ALTER COLUMN overage DROP DEFAULT;
ALTER TABLE usage_records
    ALTER COLUMN kind TYPE "char" USING (CASE kind WHEN 'usage' THEN 'u' WHEN 'adjustment' THEN 'a'
                                          WHEN 'void' THEN 'v' END)::"char",
    ALTER COLUMN source TYPE "char" USING (CASE source WHEN 'provider' THEN 'p'
                                              WHEN 'gate' THEN 'g' END)::"char",
    ALTER COLUMN late TYPE BOOLEAN USING late <> 0,
    ALTER COLUMN overage TYPE BOOLEAN USING overage <> 0;
ALTER TABLE usage_records ALTER COLUMN source SET DEFAULT 'p',
    ALTER COLUMN late SET DEFAULT false,
    ALTER COLUMN overage SET DEFAULT false,
    ADD CONSTRAINT usage_records_kind_check CHECK (kind IN ('u', 'a', 'v')),
    ADD CONSTRAINT usage_records_source_check CHECK (source IN ('p', 'g'));

-- 0005's function, its gate charges now found by the code.
CREATE OR REPLACE FUNCTION allot_level_settled(l TEXT, bfrom BIGINT, bto BIGINT) RETURNS BIGINT
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
        WHERE u.source = 'g';
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

-- An institution's records in a period (the listings' and reports'
-- institution filter, store/ledger_sql.c) are found through the index on
-- (institution, book_us >> 30): the records of one institution in one
-- 2^30 µs span share a key, which B-tree deduplication keeps once with a
-- list of their rows (6 bytes each) instead of a 16-byte key and 8-byte
-- header per record in a B-tree filled about 70 % by inserts all over it
-- (41-44 bytes per record before).  The statements give the span's
-- bounds beside book_us's own (implied by them, so the same rows), and
-- read at most a span more than the period at either end.  >> is an
-- arithmetic shift: floor(book_us / 2^30), monotone for negative
-- instants too.
DROP INDEX usage_by_inst_book;
CREATE INDEX usage_by_inst_span ON usage_records (institution, (book_us >> 30));
