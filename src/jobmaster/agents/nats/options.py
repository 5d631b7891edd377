"""The NATS agent's names: the URL and its options, subject tokens, the stream's name."""

from __future__ import annotations

import functools
import hashlib
import re
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from jobmaster.errors import ConfigError

# ---- names ---------------------------------------------------------------------------------------

_SAFE = re.compile(r"[A-Za-z0-9-]+")
_ESCAPED = re.compile(r"_([0-9A-F]{2})")
_BYTE_TOKEN = [chr(b) if _SAFE.fullmatch(chr(b)) else f"_{b:02X}" for b in range(256)]


@functools.lru_cache(maxsize=4096)
def _cached_token(text: str) -> str:
    return "".join([_BYTE_TOKEN[b] for b in text.encode()]) or "_"


def token(text: str) -> str:
    """An id as one subject token: `[A-Za-z0-9-]` kept, every other byte as `_XX` (reversible).

    Job ids (hex) take the fast path; bucket ids (`worker.Priority.n`) are few and cached.
    """
    if _SAFE.fullmatch(text):
        return text
    return _cached_token(text)


def untoken(text: str) -> str:
    """The id a `token` came from; text that is no token (odd data) comes back as it is."""
    if "_" not in text:
        return text
    raw = bytearray()
    position = 0
    for match in _ESCAPED.finditer(text):
        raw += text[position : match.start()].encode()
        raw.append(int(match.group(1), 16))
        position = match.end()
    raw += text[position:].encode()
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return text


def subject_hash(cluster_id: str, name: str) -> str:
    return hashlib.sha256(f"{cluster_id}\0{name}".encode()).hexdigest()[:16]


def stream_name(cluster_id: str, name: str) -> str:
    """`JM_<cluster>_<agent>_<hash>`: readable, and unique even when sanitising made names collide."""

    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:64]

    return f"JM_{clean(cluster_id)}_{clean(name)}_{subject_hash(cluster_id, name)[:8]}"


# ---- URL -----------------------------------------------------------------------------------------

_OPTIONS = ("tls", "tls_ca", "tls_cert", "tls_key", "tls_hostname", "replicas")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(slots=True)
class NatsOptions:
    servers: list[str]
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_hostname: str | None = None
    replicas: int = 1
    #: The URL with credentials masked, for messages and logs.
    safe_url: str = ""

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=self.tls_ca)
            if self.tls_cert:
                context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"NATS agent URL {self.safe_url}: cannot load TLS files: {exc}") from exc
        return context


def parse_url(url: str) -> NatsOptions:
    """Read `nats://[user:pass@|token@]host[:port][,nats://host2[:port]...][?options]`.

    Options (for the whole connection): `tls=true` (also implied by any `tls_*`), `tls_ca=<file>`,
    `tls_cert=<file>`, `tls_key=<file>`, `tls_hostname=<name>`, `replicas=<1..5>` (of the stream,
    for a clustered JetStream). Anything else is refused, so a typo never goes unnoticed.
    """
    base, _, query = url.partition("?")
    entries = [e.strip() for e in base.split(",")]
    servers: list[str] = []
    safe: list[str] = []
    creds: tuple[str | None, str | None] | None = None
    for entry in entries:
        parts = urlsplit(entry)
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"NATS agent URL: bad port in {_mask(entry)!r}") from None
        if parts.scheme != "nats" or not parts.hostname or parts.path not in ("", "/"):
            raise ConfigError(
                f"NATS agent URL: {_mask(entry)!r} is not of the form nats://[user:pass@]host[:port]"
                " (several servers are separated by commas; TLS is the query option ?tls=true)"
            )
        if parts.query or parts.fragment:
            raise ConfigError(f"NATS agent URL: options go after the last server, not in {_mask(entry)!r}")
        found = (
            unquote(parts.username) if parts.username is not None else None,
            unquote(parts.password) if parts.password is not None else None,
        )
        if found != (None, None):
            if creds is not None and creds != found:
                raise ConfigError("NATS agent URL: servers of one connection must share credentials")
            creds = found
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        servers.append(f"nats://{host}:{port or 4222}")
        safe.append(_mask(entry))
    options = NatsOptions(servers=servers)
    if creds is not None:
        user, password = creds
        if password is None:
            options.token = user
        else:
            options.user, options.password = user, password
    values: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in _OPTIONS:
            raise ConfigError(f"NATS agent URL: unknown option {key!r} (known: {', '.join(_OPTIONS)})")
        values[key] = value
    tls = values.get("tls", "").lower()
    if tls and tls not in _TRUE + _FALSE:
        raise ConfigError(f"NATS agent URL: tls={values['tls']!r} is not true or false")
    options.tls_ca = values.get("tls_ca") or None
    options.tls_cert = values.get("tls_cert") or None
    options.tls_key = values.get("tls_key") or None
    options.tls_hostname = values.get("tls_hostname") or None
    implied = any((options.tls_ca, options.tls_cert, options.tls_key, options.tls_hostname))
    if tls in _FALSE and implied:
        raise ConfigError("NATS agent URL: tls=false contradicts the tls_* options")
    options.tls = tls in _TRUE or implied
    if options.tls_key and not options.tls_cert:
        raise ConfigError("NATS agent URL: tls_key needs tls_cert")
    if "replicas" in values:
        try:
            options.replicas = int(values["replicas"])
        except ValueError:
            options.replicas = 0
        if not 1 <= options.replicas <= 5:
            raise ConfigError(f"NATS agent URL: replicas={values['replicas']!r} is not 1..5")
    options.safe_url = ",".join(safe) + (f"?{query}" if query else "")
    return options


def _mask(entry: str) -> str:
    """The URL without its secret: `user:***@`, or `***@` for a token (the last `@` ends it)."""
    scheme, sep, rest = entry.partition("://")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if not sep or not at:
        return entry
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}:***@{host}{rest[end:]}" if colon else f"{scheme}://***@{host}{rest[end:]}"
