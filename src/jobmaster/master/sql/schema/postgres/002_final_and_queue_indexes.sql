-- Every status change is a non-HOT update, so each full index gains an entry per write: the two
-- full indexes that only management queries used cost a third of each hot write. Jobs in flight are
-- few and reached through the partial indexes; finished jobs are listed and counted by handler
-- through jm_jobs_final_definition, which a job enters once, when it ends.

DROP INDEX IF EXISTS jm_jobs_status;

DROP INDEX IF EXISTS jm_jobs_definition;

CREATE INDEX IF NOT EXISTS jm_jobs_final_definition ON jm_jobs
    (cluster_id, definition_id, finished_at) WHERE status IN {lc.FINAL_SQL};

-- Bucket queues held in the job table (QueueHost).
CREATE INDEX IF NOT EXISTS jm_jobs_queued ON jm_jobs (bucket_id, scheduled_at)
    WHERE status = {lc.ASSIGNED};
