"""Typed settings with their defaults in one registry, shared by the app, the CLI and the worker.

Precedence, lowest first: the defaults below, the settings file in the user's config
dir (``settings.json``, which the Settings dialog edits), environment variables, and
explicit overrides (command-line flags).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, unquote_plus, urlsplit

import platformdirs

APP_NAME = "SnapDesk"

#: The job queues, one Huey per queue. A job type runs on the queue of the same name.
QUEUES = ("thumbnail", "ocr", "summary", "describe", "embed")


class ConfigError(Exception):
    """A setting is missing or has a value that cannot work; the message says which."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    return Path(os.environ.get("SNAPDESK_CONFIG_DIR") or platformdirs.user_config_dir(APP_NAME, appauthor=False))


def _env(name: str, **kw):
    return field(metadata={"env": name}, **kw)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _env("SNAPDESK_DATA_DIR", default_factory=default_data_dir)
    #: Empty for the embedded transport; a redis:// or rediss:// URL for a worker farm.
    redis_url: str = _env("REDIS_URL", default="")
    #: The farm's shared secret (Redis mode). Embedded mode keeps a secret of its own in the data dir.
    secret: str = _env("SNAPDESK_SECRET", default="", repr=False)
    retry_attempts: int = _env("JOB_RETRY_ATTEMPTS", default=3)
    retry_backoff_ms: int = _env("JOB_RETRY_BACKOFF_MS", default=5000)
    concurrency_thumbnail: int = _env("JOB_CONCURRENCY_THUMBNAIL", default=4)
    concurrency_ocr: int = _env("JOB_CONCURRENCY_OCR", default=2)
    concurrency_llm: int = _env("JOB_CONCURRENCY_LLM", default=1)
    #: Redis mode: at most this many MiB of document bytes sit in Redis at once.
    blob_window_mb: int = _env("SNAPDESK_BLOB_WINDOW_MB", default=256)
    #: Files larger than this are skipped at import with that reason.
    max_file_mb: int = _env("SNAPDESK_MAX_FILE_MB", default=512)
    #: Images with more pixels than this fail as a decompression bomb.
    max_pixels: int = _env("SNAPDESK_MAX_PIXELS", default=180_000_000)
    #: OCR reads at most this many pages of a PDF or multi-page image; the result says when there were more.
    max_pages: int = _env("SNAPDESK_MAX_PAGES", default=200)
    #: A job that runs longer than this many seconds is stopped and fails for good (0: no limit); per job
    #: type below, and this for the others. Checked at the job's checkpoints (each progress report).
    job_timeout: float = _env("SNAPDESK_JOB_TIMEOUT", default=900.0)
    job_timeout_thumbnail: float = _env("SNAPDESK_JOB_TIMEOUT_THUMBNAIL", default=120.0)
    job_timeout_ocr: float = _env("SNAPDESK_JOB_TIMEOUT_OCR", default=1800.0)
    job_timeout_summary: float = _env("SNAPDESK_JOB_TIMEOUT_SUMMARY", default=600.0)
    lease_seconds: float = _env("SNAPDESK_LEASE_SECONDS", default=30.0)
    lease_renew_seconds: float = _env("SNAPDESK_LEASE_RENEW_SECONDS", default=10.0)
    #: How long a stopping worker lets running jobs finish before it puts them back on the queue.
    drain_timeout: float = _env("SNAPDESK_DRAIN_TIMEOUT", default=30.0)
    #: A local worker started for the command line exits after this many idle seconds.
    worker_idle_exit: float = _env("SNAPDESK_WORKER_IDLE_EXIT", default=60.0)
    #: Start local workers: "auto" (yes for embedded, no for Redis), "yes" or "no".
    local_workers: str = _env("SNAPDESK_LOCAL_WORKERS", default="auto")
    #: The jobs every document gets (a job that works from another's result needs that one too).
    job_types: str = _env("SNAPDESK_JOBS", default="thumbnail,ocr,summary,describe,embed")
    #: Finished jobs' timelines, and cancel marks, are kept this many days; results stay while their session does.
    retention_days: float = _env("SNAPDESK_RETENTION_DAYS", default=30.0)
    #: A drop of at most this many documents is "asked for just now" and goes ahead of batch work.
    small_drop: int = _env("SNAPDESK_SMALL_DROP", default=20)
    openai_base_url: str = _env("OPENAI_BASE_URL", default="")
    openai_api_key: str = _env("OPENAI_API_KEY", default="", repr=False)
    llm_model: str = _env("SNAPDESK_LLM_MODEL", default="")
    #: Jobs per minute on the summary queue, shared by every worker (0: no limit).
    llm_rate_per_minute: int = _env("JOB_RATE_LLM", default=0)
    #: Seconds to wait for the LLM endpoint's answer before trying again later.
    llm_timeout: float = _env("SNAPDESK_LLM_TIMEOUT", default=120.0)
    #: The model that describes pictures at OPENAI_BASE_URL (it must take images); empty: SNAPDESK_LLM_MODEL.
    vision_model: str = _env("SNAPDESK_VISION_MODEL", default="")
    concurrency_describe: int = _env("JOB_CONCURRENCY_DESCRIBE", default=5)
    #: Descriptions per minute through the model, shared by every worker (0: no limit; offline ones never wait).
    describe_rate_per_minute: int = _env("JOB_RATE_DESCRIBE", default=10)
    #: The embeddings endpoint (``/v1/embeddings``); empty: OPENAI_BASE_URL. With no model, no vectors are made.
    embed_base_url: str = _env("SNAPDESK_EMBED_BASE_URL", default="")
    embed_api_key: str = _env("SNAPDESK_EMBED_API_KEY", default="", repr=False)
    embed_model: str = _env("SNAPDESK_EMBED_MODEL", default="")
    concurrency_embed: int = _env("JOB_CONCURRENCY_EMBED", default=2)
    #: The formats of the three thumbnail sizes: "webp" (what the window shows), or "webp,avif" for AVIF ones too.
    variant_formats: str = _env("SNAPDESK_VARIANT_FORMATS", default="webp")

    @property
    def variant_format_list(self) -> tuple[str, ...]:
        """The thumbnail formats in the order given, WebP first ("webp", "avif")."""
        named = [name.strip().lower() for name in self.variant_formats.split(",") if name.strip()]
        return ("webp", *dict.fromkeys(name for name in named if name != "webp"))

    @property
    def transport(self) -> str:
        return "redis" if self.redis_url else "embedded"

    def concurrency(self, queue: str) -> int:
        return {"thumbnail": self.concurrency_thumbnail, "ocr": self.concurrency_ocr, "summary": self.concurrency_llm,
                "describe": self.concurrency_describe, "embed": self.concurrency_embed}[queue]

    @property
    def describe_model(self) -> str:
        """The model that describes pictures ("" when there is no endpoint: descriptions are made offline)."""
        return (self.vision_model or self.llm_model) if self.openai_base_url else ""

    @property
    def embeddings_url(self) -> str:
        return self.embed_base_url or self.openai_base_url

    @property
    def embeddings_key(self) -> str:
        return self.embed_api_key or (self.openai_api_key if not self.embed_base_url else "")

    @property
    def embeddings_missing(self) -> str:
        """Why no vectors are made ("" when they are): what search by meaning tells the person."""
        if not self.embeddings_url:
            return ("no embeddings endpoint is set: set OPENAI_BASE_URL (or SNAPDESK_EMBED_BASE_URL) and "
                    "SNAPDESK_EMBED_MODEL, or the embeddings model in Settings")
        if not self.embed_model:
            return "no embeddings model is set: set SNAPDESK_EMBED_MODEL (or the embeddings model in Settings)"
        if "embed" not in self.enabled_job_types:
            return "the embed job is not enabled (SNAPDESK_JOBS)"
        return ""

    def timeout_of(self, job_type: str) -> float:
        """The time limit of a job type in seconds (0: none)."""
        return float(getattr(self, f"job_timeout_{job_type}", self.job_timeout))

    @property
    def wants_local_workers(self) -> bool:
        if self.local_workers == "auto":
            return self.transport == "embedded"
        return self.local_workers in ("yes", "true", "1")

    @property
    def enabled_job_types(self) -> set[str]:
        """The job types named in SNAPDESK_JOBS; ``embed`` only with an embeddings endpoint and model."""
        names = {name.strip() for name in self.job_types.split(",") if name.strip()}
        return names if self.embeddings_url and self.embed_model else names - {"embed"}

    @property
    def retention_seconds(self) -> float:
        return self.retention_days * 86400

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


def _coerce(f: dataclasses.Field, raw, source: str):
    kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str, "Path": Path}[f.type]
    try:
        value = kind(raw) if kind is not Path else Path(raw).expanduser()
    except (TypeError, ValueError):
        raise ConfigError(f"{f.metadata['env']}={raw!r} (from {source}) is not a valid {kind.__name__}") from None
    if kind in (int, float) and value < 0:
        raise ConfigError(f"{f.metadata['env']}={raw!r} (from {source}) must not be negative")
    return value


def load_settings(env=None, settings_file: Path | None = None, **overrides) -> Settings:
    """Settings from defaults < settings file < environment < overrides (None values are ignored)."""
    env = os.environ if env is None else env
    from_file = _read_settings_file(settings_file or settings_path())
    values = {}
    for f in dataclasses.fields(Settings):
        name = f.metadata["env"]
        for source, mapping in ((str(settings_file), from_file), ("the environment", env)):
            if mapping.get(name) not in (None, ""):
                values[f.name] = _coerce(f, mapping[name], source)
        if overrides.get(f.name) is not None:
            values[f.name] = _coerce(f, overrides[f.name], "the command line")
    settings = Settings(**values)
    _check_variant_formats(settings.variant_formats)
    if settings.redis_url and urlsplit(settings.redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"the Redis URL must start with redis://, rediss:// or unix://, not {redact_url(settings.redis_url)!r}")
    return settings


#: The thumbnail formats SNAPDESK_VARIANT_FORMATS may name (processors/thumbnail.py writes them).
VARIANT_FORMATS = ("webp", "avif")


def _check_variant_formats(value: str) -> None:
    named = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in named if name not in VARIANT_FORMATS]
    if unknown:
        raise ConfigError(f"SNAPDESK_VARIANT_FORMATS={value!r} names {', '.join(map(repr, unknown))}: thumbnails "
                          f"are written as {' or '.join(VARIANT_FORMATS)} (for example \"webp,avif\")")
    if "webp" not in named:
        raise ConfigError(f"SNAPDESK_VARIANT_FORMATS={value!r} leaves out webp: the window shows the WebP "
                          f"thumbnails, so they are always made; write \"webp,avif\" for AVIF ones too")


#: Query parameters whose values are secrets (names compared case-insensitively, after
#: percent-decoding): redis-py's ``password`` and ``ssl_password``, and the usual names of keys
#: and tokens in an HTTP endpoint's URL. A name ending in one of ``_SECRET_SUFFIXES`` is one too.
SECRET_QUERY_KEYS = frozenset({
    "password", "ssl_password", "passwd", "pwd", "pass", "key", "api_key", "apikey", "api-key", "x-api-key",
    "token", "access_token", "auth_token", "refresh_token", "id_token", "secret", "client_secret", "auth",
    "authorization", "sig", "signature", "credential", "credentials",
})
_SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "_key", "-key", "apikey")
HIDDEN = "***"
#: A URL in free text: a scheme, "://", and everything up to white space.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s]+")
#: One query parameter: its separator, its name and its value. A secret's value runs on to the next
#: separator that starts another ``name=`` (an unencoded "&" or "#" inside a password is hidden with it).
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#?]*)=((?:(?![&;][^=&;#?]*=).)*)", re.S)


def is_secret_key(name: str) -> bool:
    """Whether a query parameter called ``name`` holds a secret (a password, key or token)."""
    name = unquote_plus(name).strip().lower()
    return name in SECRET_QUERY_KEYS or name.endswith(_SECRET_SUFFIXES)


def redact_url(url: str) -> str:
    """The URL for logs and messages: the password in its userinfo (``user:PASSWORD@``) and the
    value of every secret query parameter (``?password=``, ``?api_key=``...) shown as ``***``,
    the rest as given. A userinfo without a ":" is hidden whole (``***@host``): it is a user
    name only in form, and often a password or token written where the user name goes. Never
    raises: a URL that cannot be taken apart unambiguously (an "@" after the host part, as an
    unencoded "/", "?" or "#" in a password makes) is shown with everything from "://" to its
    last "@" hidden."""
    return _redact(url)[0]


def redact_text(text: str, *urls: str) -> str:
    """``text`` with the secrets of each URL in ``urls`` hidden wherever they appear (the URL
    itself, and its password and secret query values alone, as given or percent-decoded), and
    every other URL found in the text redacted as ``redact_url`` does. Never raises."""
    try:
        text = "" if text is None else str(text)
        for url in sorted((u for u in urls if u), key=lambda u: -len(str(u))):
            url = str(url)
            shown, secrets = _redact(url)
            text = text.replace(url, shown)
            for secret in sorted(secrets, key=len, reverse=True):
                if len(secret) >= 3 and secret != HIDDEN:  # shorter ones would garble the message, not guard much
                    text = text.replace(secret, HIDDEN)
        return _URL_IN_TEXT.sub(lambda m: _redact(m.group(0))[0], text)
    except Exception:  # pragma: no cover - a last resort: say nothing rather than leak or raise
        return "(a message that could not be redacted)"


def _redact(url) -> tuple[str, set[str]]:
    """The redacted URL and the secrets it hid (each as given and percent-decoded)."""
    try:
        url = "" if url is None else str(url)
        secrets: set[str] = set()
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "", url
        netloc_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        netloc, tail = rest[:netloc_end], rest[netloc_end:]
        if "@" in tail:  # ambiguous: hide all that may be userinfo
            userinfo, _, after = rest.rpartition("@")
            _add_secret(secrets, userinfo)
            _add_secret(secrets, userinfo.partition(":")[2])
            return scheme + sep + HIDDEN + "@" + _redact_query(after, secrets), secrets
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, colon, password = userinfo.partition(":")
            if password:
                _add_secret(secrets, password)
                userinfo = user + ":" + HIDDEN
            elif user and not colon:
                _add_secret(secrets, user)
                userinfo = HIDDEN
            netloc = userinfo + "@" + host
        return scheme + sep + netloc + _redact_query(tail, secrets), secrets
    except Exception:  # pragma: no cover - defensive: never raise while reporting an error
        scheme, sep, rest = str(url).partition("://")
        return scheme + sep + HIDDEN, set()


def _redact_query(text: str, secrets: set[str]) -> str:
    """``text`` (a URL's path, query and fragment) with the values of secret parameters hidden."""
    def hide(match):
        sep, name, value = match.groups()
        if not is_secret_key(name) or not value:
            return match.group(0)
        _add_secret(secrets, value)
        return f"{sep}{name}={HIDDEN}"

    return _QUERY_PARAM.sub(hide, text)


def _add_secret(secrets: set[str], value: str) -> None:
    if value:
        for form in (value, unquote(value), unquote_plus(value)):
            secrets.update((form, quote(form, safe=""), quote(form, safe="!$&'()*+,;=:@")))


def settings_path() -> Path:
    """The settings file the window's Settings dialog writes (JSON, by environment-variable name)."""
    return config_dir() / "settings.json"


def write_settings_file(values: dict[str, object], path: Path | None = None) -> Path:
    """Merge ``values`` (by environment-variable name; "" or None removes a key) into the settings
    file, check the result loads, and replace the file atomically, readable by its owner only."""
    path = path or settings_path()
    current = _read_settings_file(path)
    for key, value in values.items():
        if value in ("", None):
            current.pop(key, None)
        else:
            current[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold secrets
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(current, fh, indent=2, sort_keys=True)
        fh.write("\n")
    try:
        load_settings(env={}, settings_file=tmp)  # the config's own checks, before the file is in place
    except ConfigError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def _read_settings_file(path: Path) -> dict:
    """The settings file's values by environment-variable name ({} when there is none)."""
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc}") from None
