-- Results: what a handler returned (`result`, NULL when it returned None), and the channel a
-- master that notifies tells when a waited-for job ends (`notify_channel`; unused by MySQL, which
-- has no notifications: jobmaster/results.py). One statement: MySQL commits each DDL by itself.

ALTER TABLE jm_jobs ADD COLUMN result LONGTEXT NULL, ADD COLUMN notify_channel VARCHAR(191) NULL;
