"""Server URLs as they may be shown: in errors, logs and reports, never with their password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """URLs are printed in reports and logs; their passwords must not be."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def describe(exc: BaseException) -> str:
    """An error's type and text on one line."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
