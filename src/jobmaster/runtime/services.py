"""What the runtime needs of the application, and no more: so `runtime` never imports `app`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

from jobmaster.config.settings import ClusterConfig
from jobmaster.events import EventBus
from jobmaster.handlers.registry import HandlerRegistry
from jobmaster.runtime.duties import Duty


@dataclass(slots=True, frozen=True)
class AppServices:
    """The configuration, the handlers, the startup hooks' `state`, the event bus and the extra
    duties of one `JobMaster`, as its runtime sees them."""

    config: ClusterConfig
    registry: HandlerRegistry
    state: SimpleNamespace
    events: EventBus
    duties: Sequence[Duty]
