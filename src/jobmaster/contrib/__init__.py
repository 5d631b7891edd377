"""Framework integrations, each importing its framework only when imported itself:
`jobmaster.contrib.starlette` (Starlette and FastAPI, the `web` extra) and `jobmaster.contrib.flask`
(the `flask` extra)."""

from __future__ import annotations


def missing_extra(module: str, extra: str, exc: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error of importing an integration whose framework is not installed: it names the extra."""
    return ModuleNotFoundError(
        f"{module} needs the {extra!r} extra ({exc.name} is not installed): pip install 'jobmaster[{extra}]'",
        name=exc.name,
    )
