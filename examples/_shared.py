"""Connection settings for the examples, from the environment (never hard-coded credentials)."""

from __future__ import annotations

import os

MASTER = os.environ.get("JOBMASTER_MASTER", "postgresql://localhost/jobmaster")
AGENT = os.environ.get("JOBMASTER_AGENT", "postgresql://localhost/jobmaster_transport")
