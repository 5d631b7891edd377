-- As jm_succeed (005): batch writes joined to the job table through the primary key, planned on
-- each call.

CREATE OR REPLACE FUNCTION jm_start(p_ids text[], p_versions bigint[], p_now float8, p_lease float8)
    RETURNS SETOF text
    LANGUAGE sql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
    AS $$ UPDATE jm_jobs j SET status = {lc.PROCESSING}, attempts = j.attempts + 1, started_at = p_now,
        lease_expires_at = p_lease, version = j.version + 1
    FROM unnest(p_ids, p_versions) AS f(id, version)
    WHERE j.id = f.id AND j.version = f.version AND j.status IN {lc.STARTABLE_SQL}
        AND NOT j.cancel_requested
    RETURNING j.id $$;

CREATE OR REPLACE FUNCTION jm_assign(p_ids text[], p_versions bigint[], p_statuses smallint[],
        p_buckets text[], p_workers text[], p_leases float8[])
    RETURNS void
    LANGUAGE sql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
    AS $$ UPDATE jm_jobs j SET status = a.status, bucket_id = a.bucket_id,
        worker_id = a.worker_id, lease_expires_at = a.lease_until, version = j.version + 1
    FROM unnest(p_ids, p_versions, p_statuses, p_buckets, p_workers, p_leases)
        AS a(id, version, status, bucket_id, worker_id, lease_until)
    WHERE j.id = a.id AND j.version = a.version $$;

CREATE OR REPLACE FUNCTION jm_release(p_ids text[], p_versions bigint[])
    RETURNS SETOF text
    LANGUAGE sql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
    AS $$ UPDATE jm_jobs j SET status = {lc.HELD}, bucket_id = NULL, worker_id = NULL,
        lease_expires_at = NULL, version = j.version + 1
    FROM unnest(p_ids, p_versions) AS f(id, version)
    WHERE j.id = f.id AND j.version = f.version AND j.status IN {lc.RELEASABLE_SQL}
    RETURNING j.id $$;
