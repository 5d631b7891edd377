-- Recurring schedules (#27): one row per schedule, and one per (schedule, process that declares it
-- in code) so a schedule removed from code is retired only once no live process declares it.

CREATE TABLE IF NOT EXISTS jm_schedules (
    cluster_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    source text NOT NULL,
    spec text NOT NULL,
    paused smallint NOT NULL DEFAULT 0,
    retired_at double precision,
    next_at double precision NOT NULL,
    last_at double precision,
    last_run_at double precision,
    triggered_job_id text,
    triggered_at double precision,
    skipped bigint NOT NULL DEFAULT 0,
    missed bigint NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (cluster_id, name)
);

CREATE INDEX IF NOT EXISTS jm_schedules_due ON jm_schedules (cluster_id, next_at, name);

CREATE TABLE IF NOT EXISTS jm_schedule_declarations (
    cluster_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    declarer text NOT NULL,
    seen_at double precision NOT NULL,
    PRIMARY KEY (cluster_id, name, declarer)
);

CREATE INDEX IF NOT EXISTS jm_schedule_declarations_declarer ON jm_schedule_declarations
    (cluster_id, declarer);
