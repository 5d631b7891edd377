-- Recurring schedules (#27): one row per schedule, and one per (schedule, process that declares it
-- in code) so a schedule removed from code is retired only once no live process declares it.

CREATE TABLE IF NOT EXISTS jm_schedules (
    cluster_id TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    spec TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    retired_at REAL,
    next_at REAL NOT NULL,
    last_at REAL,
    last_run_at REAL,
    triggered_job_id TEXT,
    triggered_at REAL,
    skipped INTEGER NOT NULL DEFAULT 0,
    missed INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (cluster_id, name)
);

CREATE INDEX IF NOT EXISTS jm_schedules_due ON jm_schedules (cluster_id, next_at, name);

CREATE TABLE IF NOT EXISTS jm_schedule_declarations (
    cluster_id TEXT NOT NULL,
    name TEXT NOT NULL,
    declarer TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (cluster_id, name, declarer)
);

CREATE INDEX IF NOT EXISTS jm_schedule_declarations_declarer ON jm_schedule_declarations
    (cluster_id, declarer);
