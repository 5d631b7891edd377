-- Keyset pages of `list_jobs` (see `dialect.POSTGRES`): jobs at rest in the listing order, and the
-- jobs in flight that neither the lease nor the queue index holds (none in practice). A full index
-- would be rewritten by every status change: 14% more per job (52.7 -> 60.3 us) for its four writes.

CREATE INDEX IF NOT EXISTS jm_jobs_listed ON jm_jobs (cluster_id, scheduled_at, id)
    WHERE status NOT IN {lc.OWNED_SQL};

CREATE INDEX IF NOT EXISTS jm_jobs_unleased ON jm_jobs (cluster_id, scheduled_at, id)
    WHERE status IN {lc.RENEWED_SQL} AND lease_expires_at IS NULL;
