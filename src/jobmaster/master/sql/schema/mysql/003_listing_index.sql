-- Keyset pages of `list_jobs`, in their order. A row's entry changes only with its due time, so a
-- job's start and completion never write it.

ALTER TABLE jm_jobs ADD INDEX jm_jobs_listed (cluster_id, scheduled_at, id);
