"""Per-bucket execution, one module per concern.

This is where a job moves AssignedToBucket/SavePending -> Queued -> Processing -> final, or straight
to Processing when it is due and a slot is free: the write that makes it ours then starts it too. The
buffer holds at most `bucket_buffer_size` jobs due within `bucket_buffer_lead_time`; at most
round(base slots x `parallelism_factor`) run at once; intake stops while the buffer is full, which is
the back-pressure the tuning guide describes.

- `intake`: how jobs come in from the bucket's queue (read, adopt, acknowledge; or take from the
  job table), chosen once per agent by the runtime;
- `bucket`: the buffer and slots, dispatch, runs and their deadlines (`BucketExecutor`);
- `invoke`: calling a handler (async directly, sync in a thread with the caller's context);
- `outcome`: where a run leaves its job (retry, final status) and the event that says so.
"""

from jobmaster.runtime.executor.bucket import BucketExecutor
from jobmaster.runtime.executor.intake import Intake, ReadAdoptAck, ReadPosition, TakeFromJobTable

__all__ = ["BucketExecutor", "Intake", "ReadAdoptAck", "ReadPosition", "TakeFromJobTable"]
