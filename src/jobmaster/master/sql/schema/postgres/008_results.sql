-- Results: what a handler returned (`result`, NULL when it returned None), and the channel told
-- when a job someone waits for ends (`notify_channel`, set by `jm.result`; see jobmaster/results.py).

ALTER TABLE jm_jobs ADD COLUMN result jsonb, ADD COLUMN notify_channel text;

-- As jm_succeed (005), for the runs that returned something: runs that returned None keep
-- jm_succeed, whose write stores nothing more.
CREATE OR REPLACE FUNCTION jm_succeed_results(p_ids text[], p_versions bigint[], p_finished float8[],
        p_results jsonb[])
    RETURNS SETOF text
    LANGUAGE sql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
    AS $$ UPDATE jm_jobs j SET status = {lc.SUCCEEDED}, finished_at = f.finished_at,
        lease_expires_at = NULL, result = f.result,
        version = j.version + 1
    FROM unnest(p_ids, p_versions, p_finished, p_results) AS f(id, version, finished_at, result)
    WHERE j.id = f.id AND j.version = f.version
    RETURNING j.id $$;

-- One notification per waited-for job that reaches a final status, whichever write put it there
-- (a run's outcome, a recovery, a cancel). The WHEN clause keeps every other row's update from
-- calling the function at all.
CREATE OR REPLACE FUNCTION jm_notify_ended() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN
        PERFORM pg_notify(NEW.notify_channel, 'ended:' || NEW.id);
        RETURN NULL;
    END $$;

CREATE TRIGGER jm_jobs_ended AFTER UPDATE OF status ON jm_jobs FOR EACH ROW
    WHEN (NEW.notify_channel IS NOT NULL AND NEW.status IN {lc.FINAL_SQL})
    EXECUTE FUNCTION jm_notify_ended();
