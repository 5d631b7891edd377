-- Bucket queues held in the job table (QueueHost).

CREATE INDEX IF NOT EXISTS jm_jobs_queued ON jm_jobs (bucket_id, scheduled_at)
    WHERE status = {lc.ASSIGNED};
