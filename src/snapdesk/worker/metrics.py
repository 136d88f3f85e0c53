"""The worker's Prometheus metrics (``snapdesk-worker --http``), made with prometheus_client.

Imported only when ``--http`` is given. Counters move where a job ends (``attempt.run_job`` tells
the worker through ``WorkerContext.observer``); what is read from elsewhere (queue depth, running
jobs, the main loop's age, memory) is collected at scrape time from what the worker's main loop
keeps, so a scrape never waits on the transport.

Each worker process counts its own jobs from zero; a recycled or restarted process starts again
(Prometheus' ``rate()`` and ``increase()`` take such resets in their stride), except
``snapdesk_worker_recycles_total``, which the supervisor carries over. Events the owner sets
aside (forged, malformed, stale) are not here: only the owner sees them (``snapdesk jobs``,
``snapdesk health``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, ProcessCollector, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from ..config import QUEUES
from ..engine.jobs import JOB_TYPES

PREFIX = "snapdesk_worker"
#: Outcomes of a job taken from a queue: it ran and ended so, or (cancelled, superseded) was dropped.
OUTCOMES = ("complete", "failed", "retrying", "cancelled", "superseded")
REQUEUE_REASONS = ("paused", "unavailable", "stopped")
#: From a thumbnail (tens of ms) to a summary by a slow LLM (minutes).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class WorkerMetrics:
    def __init__(self, worker, recycles: dict[str, int] | None = None):
        self.worker = worker
        disable_created_metrics()  # no *_created series: one per counter, and nobody reads them
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # process_resident_memory_bytes, cpu, open fds, start time
        job_types = [name for name, t in JOB_TYPES.items() if t.queue in worker.queues]
        info = Info(PREFIX, "This worker: its version, the queues it serves, its host and process id.",
                    registry=registry)
        info.info({"version": worker.version, "queues": ",".join(worker.queues), "host": worker.identity["host"],
                   "pid": str(worker.identity["pid"]), "worker": worker.identity["id"]})
        self.jobs = Counter(f"{PREFIX}_jobs", "Jobs taken from a queue, by type and how they ended (cancelled "
                            "and superseded ones may never have started).", ["job_type", "outcome"], registry=registry)
        self.duration = Histogram(f"{PREFIX}_job_duration_seconds", "How long the jobs that ran took, by type and "
                                  "outcome.", ["job_type", "outcome"], buckets=DURATION_BUCKETS, registry=registry)
        self.retries = Counter(f"{PREFIX}_retries", "Jobs that failed in a way a retry may cure: the owner "
                               "queues another attempt.", ["job_type"], registry=registry)
        self.requeued = Counter(f"{PREFIX}_jobs_requeued", "Jobs put back on their queue untouched: its queue was "
                                "paused, the transport could not be read, or the worker stopped before they "
                                "finished.", ["job_type", "reason"], registry=registry)
        self.rate_waits = Counter(f"{PREFIX}_rate_limit_waits", "Jobs that waited for the rate limit (JOB_RATE_LLM).",
                                  ["queue"], registry=registry)
        self.rate_wait_seconds = Counter(f"{PREFIX}_rate_limit_wait_seconds", "Seconds jobs were put off by the "
                                         "rate limit.", ["queue"], registry=registry)
        self.recycles = Counter(f"{PREFIX}_recycles", "Worker processes replaced by a fresh one (--max-jobs, "
                                "--max-memory), counted by this worker's supervisor.", ["reason"], registry=registry)
        for job_type in job_types:  # every series exists from the start, at 0
            for outcome in OUTCOMES:
                self.jobs.labels(job_type, outcome)
            self.duration.labels(job_type, "complete")
            self.retries.labels(job_type)
            for reason in REQUEUE_REASONS:
                self.requeued.labels(job_type, reason)
        for queue in worker.queues:
            self.rate_waits.labels(queue)
            self.rate_wait_seconds.labels(queue)
        for reason, n in (recycles or {}).items():
            self.recycles.labels(reason).inc(n)
        registry.register(_Live(worker, job_types))

    # -- told by the worker ----------------------------------------------------------------
    def job_ended(self, job_type: str, outcome: str, seconds: float | None) -> None:
        self.jobs.labels(job_type, outcome).inc()
        if seconds is not None:
            self.duration.labels(job_type, outcome).observe(seconds)
        if outcome == "retrying":
            self.retries.labels(job_type).inc()

    def job_requeued(self, job_type: str, reason: str) -> None:
        self.requeued.labels(job_type, reason).inc()

    def rate_wait(self, queue: str, seconds: float) -> None:
        self.rate_waits.labels(queue).inc()
        self.rate_wait_seconds.labels(queue).inc(seconds)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition for a scrape that sent ``Accept: accept``, and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


class _Live:
    """What is read at scrape time from the worker's state (no transport call)."""

    def __init__(self, worker, job_types: list[str]):
        self.worker = worker
        self.job_types = job_types

    def collect(self):
        w = self.worker
        running = GaugeMetricFamily(f"{PREFIX}_jobs_running", "Jobs running in this worker now.", labels=["job_type"])
        counts = {t: 0 for t in self.job_types}
        with w.context.lock:
            for payload in w.context.running.values():
                counts[payload["job_type"]] = counts.get(payload["job_type"], 0) + 1
        for job_type, n in counts.items():
            running.add_metric([job_type], n)
        yield running

        concurrency = GaugeMetricFamily(f"{PREFIX}_concurrency", "Jobs this worker runs at once, per queue.",
                                        labels=["queue"])
        for queue, n in w.concurrency.items():
            concurrency.add_metric([queue], n)
        yield concurrency

        depth = GaugeMetricFamily(f"{PREFIX}_queue_jobs", "Jobs on each queue of the farm, waiting now or for a "
                                  "later time (retries), as this worker last read them (every few seconds).",
                                  labels=["queue", "state"])
        paused = GaugeMetricFamily(f"{PREFIX}_queue_paused", "1 when the queue is paused (farm-wide).",
                                   labels=["queue"])
        for queue in QUEUES:
            c = w.queue_counts.get(queue)
            if c is None:
                continue
            depth.add_metric([queue, "waiting"], c["waiting"])
            depth.add_metric([queue, "delayed"], c["delayed"])
            paused.add_metric([queue], 1 if c["paused"] else 0)
        yield depth
        yield paused

        yield GaugeMetricFamily(f"{PREFIX}_transport_up", "1 when the transport (Redis, or the embedded queue) "
                                "answered the worker's last call.", value=1 if w.transport_ok else 0)
        yield GaugeMetricFamily(f"{PREFIX}_draining", "1 while the worker takes no new job: it is stopping, or "
                                "leaving to be recycled.", value=1 if w.leaving else 0)
        yield GaugeMetricFamily(f"{PREFIX}_loop_age_seconds", "Seconds since the worker's main loop last came "
                                "round (/healthz fails past --stuck-after).", value=w.loop_age())
        limits = w.limits
        rss = w.resident_memory()
        if rss is not None:
            yield GaugeMetricFamily(f"{PREFIX}_resident_memory_bytes", "Resident memory of this worker process "
                                    "(what --max-memory limits).", value=rss)
        yield GaugeMetricFamily(f"{PREFIX}_max_memory_bytes", "--max-memory in bytes (0: no limit).",
                                value=limits.max_memory or 0)
        yield GaugeMetricFamily(f"{PREFIX}_max_jobs", "--max-jobs (0: no limit).", value=limits.max_jobs or 0)
        ran = CounterMetricFamily(f"{PREFIX}_process_jobs", "Jobs this worker process ran since it started (what "
                                  "--max-jobs counts).")
        ran.add_metric([], limits.jobs)
        yield ran
