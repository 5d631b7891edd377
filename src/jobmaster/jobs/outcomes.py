"""What a handler may say about its job besides returning or raising an ordinary error.

`raise Discard("reason")` (or `return Discard(...)`) ends the job Failed at once, with no retry left
to spend: for input that can never succeed (a deleted account, a malformed document), where retrying
only delays the alert and loads the fleet.
"""

from __future__ import annotations


class Discard(Exception):
    """Fail the job now, without retrying it; `reason` becomes its error."""

    def __init__(self, reason: str = "discarded by the handler") -> None:
        super().__init__(reason)
        self.reason = reason
