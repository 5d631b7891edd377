-- The job, attempt, worker and bucket tables.

CREATE TABLE IF NOT EXISTS jm_jobs (
    id text PRIMARY KEY,
    cluster_id text NOT NULL,
    definition_id text NOT NULL,
    scheduled_at double precision NOT NULL,
    created_at double precision NOT NULL,
    priority smallint NOT NULL,
    lane text NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL,
    timeout_s double precision NOT NULL,
    max_retries integer NOT NULL,
    attempt_limit integer NOT NULL,
    status smallint NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    version bigint NOT NULL,
    original_scheduled_at double precision NOT NULL,
    bucket_id text,
    worker_id text,
    lease_expires_at double precision,
    started_at double precision,
    finished_at double precision,
    cancel_requested boolean NOT NULL DEFAULT false,
    last_error jsonb
);

CREATE INDEX IF NOT EXISTS jm_jobs_due ON jm_jobs
    (cluster_id, lane, priority, scheduled_at) WHERE status = {lc.HELD};

CREATE INDEX IF NOT EXISTS jm_jobs_lease ON jm_jobs
    (cluster_id, lease_expires_at) WHERE status IN {lc.OWNED_SQL};

CREATE INDEX IF NOT EXISTS jm_jobs_owner ON jm_jobs
    (worker_id, lease_expires_at) WHERE status IN {lc.OWNED_SQL};

CREATE INDEX IF NOT EXISTS jm_jobs_finished ON jm_jobs
    (cluster_id, finished_at) WHERE status IN {lc.FINAL_SQL};

-- Almost always empty, so free to maintain; spares each heartbeat a walk over every job the worker
-- holds just to find the (rare) cancel requests.
CREATE INDEX IF NOT EXISTS jm_jobs_cancel ON jm_jobs (worker_id)
    WHERE status = {lc.PROCESSING} AND cancel_requested;

CREATE INDEX IF NOT EXISTS jm_jobs_status ON jm_jobs (cluster_id, status, scheduled_at);

CREATE INDEX IF NOT EXISTS jm_jobs_definition ON jm_jobs (cluster_id, definition_id);

CREATE TABLE IF NOT EXISTS jm_attempts (
    job_id text NOT NULL,
    attempt integer NOT NULL,
    worker_id text,
    started_at double precision NOT NULL,
    finished_at double precision NOT NULL,
    outcome text NOT NULL,
    error jsonb,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE IF NOT EXISTS jm_workers (
    id text PRIMARY KEY,
    cluster_id text NOT NULL,
    name text NOT NULL,
    mode text NOT NULL,
    lane text NOT NULL,
    agent text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at double precision NOT NULL,
    heartbeat_at double precision NOT NULL,
    status smallint NOT NULL
);

CREATE INDEX IF NOT EXISTS jm_workers_cluster ON jm_workers (cluster_id, status);

CREATE TABLE IF NOT EXISTS jm_buckets (
    id text PRIMARY KEY,
    cluster_id text NOT NULL,
    agent text NOT NULL,
    lane text NOT NULL,
    priority smallint NOT NULL,
    worker_id text NOT NULL,
    status smallint NOT NULL,
    created_at double precision NOT NULL
);

CREATE INDEX IF NOT EXISTS jm_buckets_cluster ON jm_buckets (cluster_id, status);
