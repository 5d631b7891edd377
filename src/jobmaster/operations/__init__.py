"""What users do to jobs, between the public API and the stores.

`scheduling` turns a scheduling call into jobs, refusing bad input before anything is written;
`management` cancels, reschedules and retries jobs by hand, a compare-and-swap on the master with a
tombstone for jobs held only by an agent. They sit above the job model, the stores and the agents,
and below the application object, so none of those imports them back.
"""
