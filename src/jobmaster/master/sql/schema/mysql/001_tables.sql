-- The job, attempt, worker and bucket tables. MySQL has no partial indexes: `held_at` and `final_at`
-- are STORED generated columns holding the due time of HeldOnMaster jobs and the finish time of
-- final ones (NULL for the others), indexed as PostgreSQL indexes those rows alone.

CREATE TABLE IF NOT EXISTS jm_jobs (
    id VARCHAR(64) NOT NULL,
    cluster_id VARCHAR(191) NOT NULL,
    definition_id VARCHAR(255) NOT NULL,
    scheduled_at DOUBLE NOT NULL,
    created_at DOUBLE NOT NULL,
    priority SMALLINT NOT NULL,
    lane VARCHAR(64) NOT NULL,
    data LONGTEXT NOT NULL,
    metadata LONGTEXT NOT NULL,
    timeout_s DOUBLE NOT NULL,
    max_retries INT NOT NULL,
    attempt_limit INT NOT NULL,
    status SMALLINT NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL,
    original_scheduled_at DOUBLE NOT NULL,
    bucket_id VARCHAR(191) NULL,
    worker_id VARCHAR(191) NULL,
    lease_expires_at DOUBLE NULL,
    started_at DOUBLE NULL,
    finished_at DOUBLE NULL,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    last_error LONGTEXT NULL,
    held_at DOUBLE AS (IF(status = {lc.HELD}, scheduled_at, NULL)) STORED,
    final_at DOUBLE AS (IF(status IN {lc.FINAL_SQL}, finished_at, NULL)) STORED,
    PRIMARY KEY (id),
    INDEX jm_jobs_due (cluster_id, lane, priority, held_at),
    INDEX jm_jobs_lease (cluster_id, status, lease_expires_at),
    INDEX jm_jobs_finished (cluster_id, final_at),
    INDEX jm_jobs_status (cluster_id, status, scheduled_at),
    INDEX jm_jobs_definition (cluster_id, definition_id, status)
) {TABLE_OPTIONS};

CREATE TABLE IF NOT EXISTS jm_attempts (
    job_id VARCHAR(64) NOT NULL,
    attempt INT NOT NULL,
    worker_id VARCHAR(191) NULL,
    started_at DOUBLE NOT NULL,
    finished_at DOUBLE NOT NULL,
    outcome VARCHAR(32) NOT NULL,
    error LONGTEXT NULL,
    PRIMARY KEY (job_id, attempt)
) {TABLE_OPTIONS};

CREATE TABLE IF NOT EXISTS jm_workers (
    id VARCHAR(191) NOT NULL,
    cluster_id VARCHAR(191) NOT NULL,
    name VARCHAR(191) NOT NULL,
    mode VARCHAR(32) NOT NULL,
    lane VARCHAR(64) NOT NULL,
    agent VARCHAR(191) NOT NULL,
    host VARCHAR(255) NOT NULL,
    pid INT NOT NULL,
    started_at DOUBLE NOT NULL,
    heartbeat_at DOUBLE NOT NULL,
    status SMALLINT NOT NULL,
    PRIMARY KEY (id),
    INDEX jm_workers_cluster (cluster_id, status)
) {TABLE_OPTIONS};

CREATE TABLE IF NOT EXISTS jm_buckets (
    id VARCHAR(191) NOT NULL,
    cluster_id VARCHAR(191) NOT NULL,
    agent VARCHAR(191) NOT NULL,
    lane VARCHAR(64) NOT NULL,
    priority SMALLINT NOT NULL,
    worker_id VARCHAR(191) NOT NULL,
    status SMALLINT NOT NULL,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (id),
    INDEX jm_buckets_cluster (cluster_id, status),
    INDEX jm_buckets_worker (worker_id)
) {TABLE_OPTIONS};
