"""The worker's log: plain lines or one JSON object a line (``--log-json``), to stderr or a rotating
file, with Huey's per-task chatter and the tracebacks of a transport outage left out."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys

from ..engine.retrying import TRANSIENT_ERRORS


class JSONFormatter(logging.Formatter):
    FIELDS = ("job_id", "job_type", "duration_ms", "outcome", "error", "worker")

    def format(self, record):
        entry = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
                 "msg": record.getMessage()}
        entry.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _NoConnectionTracebacks(logging.Filter):
    """While the transport is down, Huey logs a traceback on every read it tries; the worker already
    said once that it is retrying, so those records go."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], TRANSIENT_ERRORS))


def setup_logging(json_logs: bool, log_file: str | None, level=logging.INFO) -> None:
    handler = (logging.handlers.RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
               if log_file else logging.StreamHandler(sys.stderr))
    handler.setFormatter(JSONFormatter() if json_logs else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_NoConnectionTracebacks())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("huey").setLevel(logging.WARNING)  # it logs every task at INFO; we log one line per job
