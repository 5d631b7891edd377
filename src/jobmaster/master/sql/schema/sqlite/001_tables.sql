-- The job, attempt, worker and bucket tables.

CREATE TABLE IF NOT EXISTS jm_jobs (
    id TEXT PRIMARY KEY,
    cluster_id TEXT NOT NULL,
    definition_id TEXT NOT NULL,
    scheduled_at REAL NOT NULL,
    created_at REAL NOT NULL,
    priority INTEGER NOT NULL,
    lane TEXT NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    timeout_s REAL NOT NULL,
    max_retries INTEGER NOT NULL,
    attempt_limit INTEGER NOT NULL,
    status INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL,
    original_scheduled_at REAL NOT NULL,
    bucket_id TEXT,
    worker_id TEXT,
    lease_expires_at REAL,
    started_at REAL,
    finished_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);

CREATE INDEX IF NOT EXISTS jm_jobs_due ON jm_jobs
    (cluster_id, lane, priority, scheduled_at) WHERE status = {lc.HELD};

CREATE INDEX IF NOT EXISTS jm_jobs_lease ON jm_jobs
    (cluster_id, lease_expires_at) WHERE status IN {lc.OWNED_SQL};

CREATE INDEX IF NOT EXISTS jm_jobs_owner ON jm_jobs
    (worker_id, lease_expires_at) WHERE status IN {lc.OWNED_SQL};

CREATE INDEX IF NOT EXISTS jm_jobs_finished ON jm_jobs
    (cluster_id, finished_at) WHERE status IN {lc.FINAL_SQL};

CREATE INDEX IF NOT EXISTS jm_jobs_status ON jm_jobs (cluster_id, status, scheduled_at);

CREATE INDEX IF NOT EXISTS jm_jobs_definition ON jm_jobs (cluster_id, definition_id);

CREATE TABLE IF NOT EXISTS jm_attempts (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    worker_id TEXT,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE IF NOT EXISTS jm_workers (
    id TEXT PRIMARY KEY,
    cluster_id TEXT NOT NULL,
    name TEXT NOT NULL,
    mode TEXT NOT NULL,
    lane TEXT NOT NULL,
    agent TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    status INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS jm_workers_cluster ON jm_workers (cluster_id, status);

CREATE TABLE IF NOT EXISTS jm_buckets (
    id TEXT PRIMARY KEY,
    cluster_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    lane TEXT NOT NULL,
    priority INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    created_at REAL NOT NULL
);

CREATE INDEX IF NOT EXISTS jm_buckets_cluster ON jm_buckets (cluster_id, status);
