-- Lease renewal names the held ids (primary key), so nothing reads jm_jobs_owner any more, and every
-- take, adopt and start of a job wrote an entry into it.
DROP INDEX IF EXISTS jm_jobs_owner;

-- A job waiting in a job-table queue has no lease (a drain of its bucket returns it), so the
-- recovery index need not hold it: that was an entry per scheduled job, never read.
DROP INDEX IF EXISTS jm_jobs_lease;

CREATE INDEX IF NOT EXISTS jm_jobs_lease ON jm_jobs (cluster_id, lease_expires_at)
    WHERE status IN {lc.OWNED_SQL} AND lease_expires_at IS NOT NULL;
