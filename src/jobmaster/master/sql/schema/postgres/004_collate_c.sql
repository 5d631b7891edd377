-- Keys compare byte by byte whatever the database's locale: under a libc locale (even C.UTF-8)
-- every comparison in these indexes went through strcoll.

ALTER TABLE jm_jobs
    ALTER COLUMN id TYPE text COLLATE "C", ALTER COLUMN cluster_id TYPE text COLLATE "C",
    ALTER COLUMN definition_id TYPE text COLLATE "C", ALTER COLUMN lane TYPE text COLLATE "C",
    ALTER COLUMN bucket_id TYPE text COLLATE "C", ALTER COLUMN worker_id TYPE text COLLATE "C";

ALTER TABLE jm_attempts ALTER COLUMN job_id TYPE text COLLATE "C";

ALTER TABLE jm_buckets
    ALTER COLUMN id TYPE text COLLATE "C", ALTER COLUMN cluster_id TYPE text COLLATE "C",
    ALTER COLUMN worker_id TYPE text COLLATE "C";

ALTER TABLE jm_workers ALTER COLUMN id TYPE text COLLATE "C", ALTER COLUMN cluster_id TYPE text COLLATE "C";
