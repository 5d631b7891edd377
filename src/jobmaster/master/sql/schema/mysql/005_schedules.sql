-- Recurring schedules (#27): one row per schedule, and one per (schedule, process that declares it
-- in code) so a schedule removed from code is retired only once no live process declares it.

CREATE TABLE IF NOT EXISTS jm_schedules (
    cluster_id VARCHAR(191) NOT NULL,
    name VARCHAR(191) NOT NULL,
    source VARCHAR(16) NOT NULL,
    spec MEDIUMTEXT NOT NULL,
    paused TINYINT NOT NULL DEFAULT 0,
    retired_at DOUBLE,
    next_at DOUBLE NOT NULL,
    last_at DOUBLE,
    last_run_at DOUBLE,
    triggered_job_id VARCHAR(64),
    triggered_at DOUBLE,
    skipped BIGINT NOT NULL DEFAULT 0,
    missed BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL,
    PRIMARY KEY (cluster_id, name),
    INDEX jm_schedules_due (cluster_id, next_at, name)
) {TABLE_OPTIONS};

CREATE TABLE IF NOT EXISTS jm_schedule_declarations (
    cluster_id VARCHAR(191) NOT NULL,
    name VARCHAR(191) NOT NULL,
    declarer VARCHAR(64) NOT NULL,
    seen_at DOUBLE NOT NULL,
    PRIMARY KEY (cluster_id, name, declarer),
    INDEX jm_schedule_declarations_declarer (cluster_id, declarer)
) {TABLE_OPTIONS};
