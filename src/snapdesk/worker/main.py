"""snapdesk-worker: runs jobs from chosen queues, on the embedded queue or a Redis farm.

    snapdesk-worker --redis redis://farm:6379/0 --queues ocr --concurrency 2 --log-json
    snapdesk-worker --queues thumbnail --http 9108 --max-jobs 500 --max-memory 1500

Each queue gets a Huey consumer with thread workers (no fork, so it runs on Windows too).
SIGTERM and SIGINT drain: no new job starts, running jobs get ``--drain-timeout`` seconds
to finish, and whatever still runs then goes back on its queue before the process exits.

``--http`` serves /metrics, /healthz and /readyz (``endpoints.py``, ``metrics.py``);
``--max-jobs`` and ``--max-memory`` make the process a supervisor that replaces each worker
process past a limit with a fresh one (``recycling.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from pathlib import Path

from huey import signals as huey_signals

from .. import __version__
from ..config import QUEUES, ConfigError, load_settings, redact_url
from ..engine import events as ev
from ..engine import attempt
from ..engine.jobs import JOB_TYPES
from ..engine.local_workers import lock_path, try_lock
from ..engine.retrying import TRANSIENT_ERRORS, Backoff, wait_out
from ..engine.retrying import describe as describe_error
from ..engine.transport import TASK_NAME, make_transport
from . import recycling
from .consumer import PausableConsumer
from .logs import setup_logging

log = logging.getLogger("snapdesk.worker")

REGISTRY_INTERVAL = 5.0  # seconds between heartbeats in the worker registry
QUEUE_COUNTS_INTERVAL = 2.0  # seconds between reads of the queues' depth, for /metrics
#: /healthz fails when the main loop has not come round for this long: longer than any one
#: transport call may take (redis-py's socket timeout is 30 s), so a slow Redis is not "stuck".
STUCK_AFTER = 60.0


class Worker:
    def __init__(self, transport, settings, queues, concurrency=None, idle_exit=0.0, drain_timeout=None,
                 max_jobs=None, max_memory_mb=None, stuck_after=STUCK_AFTER, parent_pid=None):
        self.transport = transport
        self.settings = settings
        self.queues = queues
        self.idle_exit = idle_exit
        self.drain_timeout = settings.drain_timeout if drain_timeout is None else drain_timeout
        self.identity = ev.worker_identity()
        self.version = __version__
        self.started_at = time.time()
        self.context = attempt.WorkerContext(transport=transport, worker=self.identity,
                                            retention_seconds=settings.retention_seconds, settings=settings,
                                            observer=self)
        self.stopping = threading.Event()  # leave the main loop and drain
        self.signalled_at: float | None = None  # when a signal asked to stop: the drain timeout runs from then
        #: Why the worker takes no new job (stopping, or leaving to be recycled); None while it does.
        self.leaving: str | None = None
        self.limits = recycling.Limits(max_jobs, max_memory_mb, self._recycle)
        self.stuck_after = stuck_after
        self.parent_pid = parent_pid  # the supervisor's, when this is one of its worker processes
        self.metrics = None  # set by main() with --http
        self.loop_beat = time.monotonic()  # when the main loop (or the drain) last came round
        self.transport_ok, self.transport_error = False, "not connected yet"
        self.queue_counts: dict = {}  # per queue, as last read (for /metrics)
        self.hooks = _test_hooks()
        self.concurrency = {q: concurrency or settings.concurrency(q) for q in queues}
        self.consumers = {}
        for queue in queues:
            huey = transport.huey(queue)
            huey.signal(huey_signals.SIGNAL_INTERRUPTED)(self._requeue_interrupted)
            self.consumers[queue] = PausableConsumer(
                huey, is_paused=lambda q=queue: q in self.context.paused,
                workers=self.concurrency[queue], worker_type="thread",
                periodic=queue == queues[0],  # one scheduler per process queues the maintenance task
                on_periodic=self.queue_trim,
                # Poll an idle SQLite queue every 100 ms (Redis blocks instead): a drop starts fast.
                initial_delay=0.1, backoff=1.0, max_delay=0.1, scheduler_interval=1,
                check_worker_health=True, shutdown_timeout=self.drain_timeout)

    # -- lifecycle ---------------------------------------------------------------------
    def run(self) -> int:
        attempt.install(self.context)
        # Before any job can start: a SIGTERM that arrives while the consumers start must still drain.
        self._install_signal_handlers()
        try:  # in the registry, and knowing the pauses, before the first job starts
            self.context.paused = frozenset(self.transport.paused_queues())
            self.transport.heartbeat(self.info())
            if self.metrics is not None:
                self.queue_counts = self.transport.queue_counts()
            self.transport_ok, self.transport_error = True, None
        except Exception as exc:
            self.transport_error = describe_error(exc)
            log.exception("cannot reach the transport yet; trying again while running")
        for consumer in self.consumers.values():
            consumer.start()
        log.info("worker %s serving %s on %s", self.identity["id"],
                 ", ".join(f"{q} x{n}" for q, n in self.concurrency.items()), self.transport.describe())
        if self.limits.active:
            log.info("this worker process makes way for a fresh one after %s",
                     " or ".join(([f"{self.limits.max_jobs} job{'s' if self.limits.max_jobs != 1 else ''}"]
                                  if self.limits.max_jobs else [])
                                 + ([f"{self.limits.max_memory // recycling.MB} MB of resident memory"]
                                    if self.limits.max_memory else [])))
        next_lease = next_health = next_counts = 0.0
        next_registry = next_paused = time.monotonic() + 0.5
        idle_since = time.monotonic()
        backoff, retry_at = Backoff(first=1.0, cap=10.0), 0.0
        while not self.stopping.wait(0.2):
            self._test_hook_block_loop()
            now = self.loop_beat = time.monotonic()
            if self.parent_pid and os.getppid() != self.parent_pid:
                log.warning("the supervisor (process %s) is gone: stopping", self.parent_pid)
                self._stop("stopping: the supervisor is gone")
                break
            self.limits.check_memory()
            if now < retry_at:
                continue
            try:
                if now >= next_paused:
                    self.context.paused = frozenset(self.transport.paused_queues())
                    next_paused = now + 0.5
                if self.metrics is not None and now >= next_counts:
                    self.queue_counts = self.transport.queue_counts()
                    next_counts = now + QUEUE_COUNTS_INTERVAL
                if now >= next_registry:
                    self.transport.heartbeat(self.info())
                    next_registry = now + REGISTRY_INTERVAL
                if now >= next_lease:
                    self.renew_leases()
                    next_lease = now + self.settings.lease_renew_seconds
                if now >= next_health:
                    for consumer in self.consumers.values():
                        consumer.check_worker_health()
                    next_health = now + 10
                if self.idle_exit:
                    if self.context.running or self._queued():
                        idle_since = now
                    elif now - idle_since >= self.idle_exit:
                        log.info("no work for %.0f s, exiting", self.idle_exit)
                        break
            except TRANSIENT_ERRORS as exc:  # the jobs go on; heartbeats resume when the transport is back
                self.transport_ok, self.transport_error = False, describe_error(exc)
                if backoff.failures == 0:
                    log.warning("cannot use %s (%s); retrying with backoff", self.transport.describe(),
                                describe_error(exc))
                retry_at = now + backoff.failed()
                continue
            except Exception:  # a bug must not kill the worker either; try again next round
                log.exception("worker housekeeping failed")
                retry_at = now + backoff.failed()
                continue
            self.transport_ok, self.transport_error = True, None
            if backoff.succeeded():
                log.info("%s is reachable again", self.transport.describe())
        if self.leaving is None:  # --idle-exit
            self._stop("stopping: idle")
        self.drain()
        if self.limits.reason and self.signalled_at is None:
            return recycling.EXIT_RECYCLED[self.limits.reason]
        return 0

    def _install_signal_handlers(self):
        def handle(signum, frame):
            log.info("received %s: finishing running jobs (up to %.0f s)", signal.Signals(signum).name,
                     self.drain_timeout)
            self._stop(f"stopping: received {signal.Signals(signum).name}")

        for name in ("SIGTERM", "SIGINT", "SIGBREAK"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), handle)

    def _stop(self, why: str) -> None:
        """Stop: drain, giving running jobs the drain timeout from now."""
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
        self.leaving = why
        self.stopping.set()

    def _recycle(self, reason: str, message: str) -> None:
        """Past --max-jobs or --max-memory (told by a job's thread or the main loop): take no new job,
        let the running ones finish however long they take (none goes back on a queue, so none runs
        twice), then exit for the supervisor to start a fresh process."""
        log.info("recycling: this worker process %s; it takes no new job, finishes the running ones and "
                 "makes way for a fresh process", message)
        self.leaving = f"recycling: this process {message}"
        for consumer in self.consumers.values():  # before this job's thread can take another
            consumer.stop_flag.set()
        self.stopping.set()

    def drain(self) -> None:
        """Stop taking jobs and let running ones finish. When a signal asked to stop, that is within the
        drain timeout, and what still runs then goes back on its queue; a recycling process waits for
        its jobs, unless a signal comes meanwhile."""
        for consumer in self.consumers.values():
            consumer.stop_flag.set()
        threads = [t for c in self.consumers.values() for t in [*(t for _, t in c.worker_threads), c.scheduler]]
        next_note = time.monotonic() + 60
        while True:
            now = self.loop_beat = time.monotonic()  # draining is not being stuck: /healthz stays 200
            alive = [t for t in threads if t.is_alive()]
            if not alive or (self.signalled_at is not None and now >= self.signalled_at + self.drain_timeout):
                break
            if now >= next_note:
                log.info("still waiting for %d running jobs to finish", len(self.context.running))
                next_note = now + 60
            alive[0].join(0.2)
        for consumer in self.consumers.values():
            consumer.huey.notify_interrupted_tasks()  # -> _requeue_interrupted for each unfinished job
        try:
            self.transport.remove_worker(self.identity["id"])
        except Exception:
            log.exception("could not remove this worker from the registry")
        log.info("worker %s stopped", self.identity["id"])

    def queue_trim(self, due_tasks) -> None:
        """The scheduler found the periodic maintenance due: queue it where it can run, which is not a
        paused queue (there it would wait for the resume, and count as waiting work)."""
        if not due_tasks:
            return
        open_queues = [q for q in self.queues if q not in self.context.paused]
        if not open_queues:
            log.info("maintenance skipped: every queue this worker serves is paused")
            return
        try:
            self.transport.enqueue_trim(open_queues[0])
        except TRANSIENT_ERRORS as exc:
            log.warning("could not queue the maintenance (%s); the next one comes in 15 minutes", exc)

    def _requeue_interrupted(self, signal_name, task, *args, **kwargs):
        if task.name != TASK_NAME:
            return  # the maintenance task: the next one comes soon enough
        payload = task.args[0]
        deadline = time.monotonic() + 10  # should the transport stay away, the owner's lease check takes over
        try:
            wait_out(lambda: self.transport.enqueue(JOB_TYPES[payload["job_type"]].queue, payload,
                                                    priority=payload.get("priority", 0)),
                     f"put job {payload['job_id']} back on its queue", log, deadline=deadline)
            event = ev.job_event(ev.EventType.QUEUED, payload, self.identity,
                                 error="the worker stopped before the job finished; it went back to the queue")
            wait_out(lambda: self.transport.emit(payload["owner"], event, retry=False), "say so", log, deadline=deadline)
        except TRANSIENT_ERRORS as exc:
            log.error("job %s %s could not go back on its queue (%s); the owner queues it again when its lease "
                      "expires", payload["job_id"], payload["job_type"], describe_error(exc))
            return
        log.warning("job %s %s went back to the queue: the worker stopped", payload["job_id"], payload["job_type"])
        if self.metrics is not None:
            self.metrics.job_requeued(payload["job_type"], "stopped")

    # -- what attempt.run_job tells (WorkerContext.observer) --------------------------------
    def job_ended(self, job_type: str, outcome: str, seconds: float | None) -> None:
        if self.metrics is not None:
            self.metrics.job_ended(job_type, outcome, seconds)
        if seconds is not None:  # it ran
            self._test_hook_leak()
            self.limits.job_ran()

    def job_requeued(self, job_type: str, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.job_requeued(job_type, reason)

    def rate_wait(self, queue: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.rate_wait(queue, seconds)

    # -- probes ------------------------------------------------------------------------
    def loop_age(self) -> float:
        return max(0.0, time.monotonic() - self.loop_beat)

    def liveness(self) -> tuple[bool, str]:
        """/healthz: whether the main loop still comes round (it renews leases and heartbeats)."""
        age = self.loop_age()
        if age > self.stuck_after:
            return False, f"stuck: the main loop has not come round for {age:.0f} s (limit {self.stuck_after:g} s)"
        return True, f"ok: the main loop came round {age:.1f} s ago"

    def readiness(self) -> tuple[bool, str]:
        """/readyz: whether this worker takes jobs now."""
        alive, why = self.liveness()
        if not alive:
            return False, why
        if self.leaving:
            return False, f"draining: {self.leaving}"
        if not self.transport_ok:
            return False, f"cannot use {self.transport.describe()}: {self.transport_error}"
        paused = set(self.queues) & self.context.paused
        if paused == set(self.queues):
            return False, f"paused: every queue this worker serves is paused ({', '.join(self.queues)})"
        serving = [q for q in self.queues if q not in paused]
        return True, f"ready: taking {', '.join(serving)} jobs from {self.transport.describe()}"

    def resident_memory(self) -> int | None:
        return recycling.resident_memory()

    # -- test hooks (SNAPDESK_TEST_WORKER_HOOKS; like attempt.py's SNAPDESK_TEST_FAULTS, never set in use) --
    def _test_hook_block_loop(self) -> None:
        """``{"block_loop_while": PATH}``: the main loop stands still while PATH exists (a stuck loop)."""
        path = self.hooks.get("block_loop_while")
        while path and os.path.exists(path) and not self.stopping.is_set():
            time.sleep(0.05)

    def _test_hook_leak(self) -> None:
        """``{"leak_mb_per_job": N}``: every job that ran leaves N MB behind (a leak, for --max-memory)."""
        mb = self.hooks.get("leak_mb_per_job")
        if mb:
            _LEAKED.append(b"\x01" * int(mb * recycling.MB))  # written, so resident

    # -- heartbeats --------------------------------------------------------------------
    def renew_leases(self) -> None:
        for owner, jobs in self.context.running_by_owner().items():
            beat = ev.heartbeat(owner, self.identity, jobs)
            beat["ts"] = self.context.clock()
            self.transport.emit(owner, beat, retry=False)

    def info(self) -> dict:
        with self.context.lock:
            running = [{"owner": o, "job_id": j, "job_type": p["job_type"]} for (o, j), p in self.context.running.items()]
        return {**self.identity, "queues": list(self.queues), "concurrency": self.concurrency,
                "running": running, "version": __version__, "started_at": self.started_at,
                "paused": sorted(set(self.queues) & self.context.paused)}

    def _queued(self) -> bool:
        """Work this worker could take: waiting or scheduled on a queue it serves that is not paused."""
        return any(c.huey.pending_count() or c.huey.scheduled_count()
                   for q, c in self.consumers.items() if q not in self.context.paused)


_LEAKED: list[bytes] = []


def _test_hooks() -> dict:
    """Test hook: the worker's own faults, for the tests of /healthz and --max-memory."""
    return json.loads(os.environ.get("SNAPDESK_TEST_WORKER_HOOKS") or "{}")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="snapdesk-worker", description="Run SnapDesk jobs from the chosen queues.")
    p.add_argument("--version", action="version", version=f"snapdesk-worker {__version__}")
    p.add_argument("--redis", metavar="URL", help="the farm's Redis (default: REDIS_URL; without one, the embedded "
                   "queue of the library in --data-dir)")
    p.add_argument("--data-dir", help="the library's data folder (embedded mode; default: SNAPDESK_DATA_DIR)")
    p.add_argument("--queues", default=",".join(QUEUES), help=f"comma-separated queues to serve (default: all: "
                   f"{','.join(QUEUES)})")
    p.add_argument("--concurrency", type=int, help="jobs at once per queue (default: JOB_CONCURRENCY_* per queue)")
    p.add_argument("--drain-timeout", type=float, help="seconds running jobs get to finish on SIGTERM/SIGINT "
                   "before they go back to the queue (default 30)")
    p.add_argument("--idle-exit", type=float, default=0, help="exit after this many seconds without work")
    p.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    p.add_argument("--log-file", help="log to this file (rotated) instead of stderr")
    p.add_argument("--http", metavar="[HOST:]PORT", help="serve /metrics (Prometheus), /healthz and /readyz on "
                   "this address; a bare port is on 127.0.0.1 (loopback), 0.0.0.0:PORT serves every interface "
                   "(default: off)")
    p.add_argument("--stuck-after", type=float, default=STUCK_AFTER, metavar="S", help="/healthz answers 503 "
                   f"when the worker's main loop has not come round for this many seconds (default {STUCK_AFTER:g})")
    p.add_argument("--max-jobs", type=int, metavar="N", help="after N jobs a worker process takes no new one, "
                   "finishes those it runs, and a fresh process takes over (default: never)")
    p.add_argument("--max-memory", type=float, metavar="MB", help="the same once a worker process's resident "
                   "memory passes MB megabytes (default: never)")
    p.add_argument("--single", action="store_true", help=argparse.SUPPRESS)  # the owner's local worker
    # A worker process run by the recycling supervisor: the recycles so far, and the --http socket it hands down.
    p.add_argument("--supervised", help=argparse.SUPPRESS)
    p.add_argument("--http-fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("--self-test", action="store_true", help="thumbnail and OCR a bundled sample with the "
                   "network blocked, print what was found, and exit (0 when it passed)")
    args = p.parse_args(argv)
    args.queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = [q for q in args.queues if q not in QUEUES]
    if unknown or not args.queues:
        p.error(f"unknown queue {', '.join(unknown) or '(none)'}; choose from {', '.join(QUEUES)}")
    if args.concurrency is not None and args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    if args.max_jobs is not None and args.max_jobs < 1:
        p.error("--max-jobs must be at least 1")
    if args.max_memory is not None and args.max_memory <= 0:
        p.error("--max-memory must be a number of megabytes above 0")
    if args.stuck_after <= 0:
        p.error("--stuck-after must be above 0")
    if args.http is not None:
        from .endpoints import parse_address

        try:
            args.http = parse_address(args.http)
        except ValueError as exc:
            p.error(f"--http {exc}")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.self_test:
        from ..selftest import run as self_test

        return self_test()
    setup_logging(args.log_json, args.log_file)
    if (args.max_jobs or args.max_memory) and args.supervised is None:
        return recycling.supervise(argv, args.http)
    try:
        settings = load_settings(data_dir=args.data_dir, redis_url=args.redis)
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        lock = None
        if args.single:
            for _ in range(10):  # the owner may be probing the lock this very moment
                lock = try_lock(lock_path(settings))
                if lock:
                    break
                time.sleep(0.05)
            else:
                log.info("another local worker already serves %s", settings.data_dir)
                return 0
        transport = make_transport(settings, run_job=attempt.run_job, trim=attempt.trim_transport)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 2
    log.info("snapdesk-worker %s on %s", __version__,
             redact_url(settings.redis_url) if settings.redis_url else f"the embedded queue in {settings.data_dir}")
    server = None
    try:
        worker = Worker(transport, settings, args.queues, args.concurrency, args.idle_exit, args.drain_timeout,
                        max_jobs=args.max_jobs, max_memory_mb=args.max_memory, stuck_after=args.stuck_after,
                        parent_pid=os.getppid() if args.supervised is not None else None)
        if args.http is not None or args.http_fd is not None:
            server = _serve_http(worker, args)
            if server is None:
                return 2
        return worker.run()
    finally:
        if server is not None:
            server.shutdown()
        transport.close()
        if lock:
            lock.close()


def _serve_http(worker: Worker, args):
    """/metrics, /healthz and /readyz for this worker, on --http or on the supervisor's socket."""
    from . import endpoints
    from .metrics import WorkerMetrics

    try:
        sock = (recycling.listening_socket(args.http_fd) if args.http_fd is not None
                else endpoints.listen(args.http))
    except OSError as exc:
        log.error("cannot serve HTTP on %s:%s: %s", *args.http, exc.strerror or exc)
        return None
    worker.metrics = WorkerMetrics(worker, recycling.parse_recycles(args.supervised))
    return endpoints.serve(sock, worker, worker.metrics)


if __name__ == "__main__":
    sys.exit(main())
