-- 0015: the pool's sums read the index only (docs/DASHBOARD.md, "Render
-- time").  A pool level's sum over a month, `WHERE bucket >= ? AND bucket
-- < ?` over every institution's buckets, went through buckets_by_time and
-- then to each row for its charge: 319,166 rows of a month of 1,000,000
-- records took 3.5 s, and every quota view, admission and report of the
-- pool after a start pays it once (store/sumcache.h caches it after).  With
-- charge in the index the same sum is 0.08 s.  The index is replaced, not
-- added to: a booking changes one bucket row's charge and its entry in
-- this index, as before plus the entry's update.
DROP INDEX IF EXISTS buckets_by_time;
CREATE INDEX buckets_by_time_charge ON usage_buckets(bucket, charge);
