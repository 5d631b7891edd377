-- Results: what a handler returned (`result`, NULL when it returned None), and the channel a
-- master that notifies tells when a waited-for job ends (`notify_channel`; unused by SQLite, which
-- has no notifications: jobmaster/results.py).

ALTER TABLE jm_jobs ADD COLUMN result TEXT;
ALTER TABLE jm_jobs ADD COLUMN notify_channel TEXT;
