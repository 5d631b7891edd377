"""Logs operators can use: every failure, retry, timeout and recovery, with the job's identity.

Everything goes through the standard `logging` module, under `jobmaster.*` loggers:

- `jobmaster.job`: each run that did not succeed (WARNING, ERROR when the job ends Failed), each
  success at DEBUG (INFO after `log_successes(logging.INFO)`, `jobmaster worker --log-jobs`);
  a handler's own `ctx.logger` is `jobmaster.job.<handler>`.
- `jobmaster.connection`: the master or an agent unreachable (WARNING) and reachable again (INFO),
  once per change, not once per retry.
- `jobmaster.recovery`, `jobmaster.drain`, `jobmaster.poison`: jobs of dead workers given back,
  buckets adopted and drained, undecodable messages kept aside.

`JobFieldsFilter` on a handler gives every record written while a job runs (by `ctx.logger` or any
other logger the handler uses) the attributes `job_id`, `handler`, `attempt`, `lane` and
`priority`; `TextFormatter` prints the job id, `JsonFormatter` writes one JSON object a line.
"""

from jobmaster.logs.context import CURRENT_JOB, JOB_FIELDS, JobFieldsFilter, job_fields
from jobmaster.logs.formatters import JsonFormatter, TextFormatter, configure
from jobmaster.logs.outages import Outages
from jobmaster.logs.runs import RunLog, log_successes

__all__ = [
    "CURRENT_JOB",
    "JOB_FIELDS",
    "JobFieldsFilter",
    "JsonFormatter",
    "Outages",
    "RunLog",
    "TextFormatter",
    "configure",
    "job_fields",
    "log_successes",
]
