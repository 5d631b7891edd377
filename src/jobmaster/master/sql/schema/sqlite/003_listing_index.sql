-- Keyset pages of `list_jobs`, in their order. SQLite writes an index only when a column of it
-- changes, so a job's start and completion never write this one.

CREATE INDEX IF NOT EXISTS jm_jobs_listed ON jm_jobs (cluster_id, scheduled_at, id);
