-- InnoDB rewrites an index entry (delete-mark and insert) whenever a column of its key changes, and
-- both of these held `status`: each start and completion of every job paid for them. Jobs are listed
-- by status through `jm_jobs_lease` (cluster_id, status, ...) and counted by handler through
-- jm_jobs_final_definition, which a job's row enters once, when it ends.

ALTER TABLE jm_jobs DROP INDEX jm_jobs_status, DROP INDEX jm_jobs_definition,
    ADD INDEX jm_jobs_final_definition (cluster_id, definition_id, final_at);
