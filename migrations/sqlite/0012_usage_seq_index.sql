-- 0012: an index on (provider, seq) for GET /v1/providers/{id}/sequence,
-- which finds gaps and repeats in one ordered pass over it (the index alone
-- answers: it covers the query).  Partial: records without seq are not in it.
CREATE INDEX usage_by_provider_seq ON usage_records(provider, seq) WHERE seq IS NOT NULL;
