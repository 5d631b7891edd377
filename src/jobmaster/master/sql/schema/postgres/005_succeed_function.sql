-- Batch writes that join their batch to the job table are SQL functions: one with SET clauses is
-- planned on each call, with these settings, so the join goes through the primary key whatever the
-- statistics say (see `_SUCCEED` in master/postgres.py for what a kept generic plan did instead).

CREATE OR REPLACE FUNCTION jm_succeed(p_ids text[], p_versions bigint[], p_finished float8[])
    RETURNS SETOF text
    LANGUAGE sql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
    AS $$ UPDATE jm_jobs j SET status = {lc.SUCCEEDED}, finished_at = f.finished_at,
        lease_expires_at = NULL,
        version = j.version + 1
    FROM unnest(p_ids, p_versions, p_finished) AS f(id, version, finished_at)
    WHERE j.id = f.id AND j.version = f.version
    RETURNING j.id $$;
