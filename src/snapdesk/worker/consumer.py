"""Huey's consumer as the worker drives it: threads that take nothing from a paused queue and back
off quietly while the queue cannot be read, a scheduler that lets the worker place periodic tasks,
no signal handlers of its own (the worker drains on SIGTERM), and threads that left because the
consumer is stopping not taken for dead."""

from __future__ import annotations

import logging

from huey.consumer import Consumer, Scheduler
from huey.consumer import Worker as HueyWorker

from ..engine.retrying import TRANSIENT_ERRORS, Backoff
from ..engine.retrying import describe as describe_error
from ..engine.transport import SignatureError

log = logging.getLogger("snapdesk.worker")


class _PausableWorker(HueyWorker):
    """A Huey worker thread that takes nothing from a paused queue, and backs off quietly while the
    queue cannot be read (Redis down) instead of logging a traceback ten times a second."""

    is_paused = staticmethod(lambda: False)
    outage: Backoff  # (Huey's Worker already has a `backoff`: the idle sleep multiplier)

    def loop(self, now=None):
        if self.is_paused():
            self.stop_flag.wait(0.25)
            return
        try:
            task = self.huey.dequeue()
        except TRANSIENT_ERRORS as exc:
            if self.outage.failures == 0:
                log.warning("cannot read the %s queue (%s); retrying with backoff", self.huey.name, describe_error(exc))
            self.stop_flag.wait(self.outage.failed())
            return
        except SignatureError as exc:  # forged or unsigned: dropped, never unpickled, never run
            log.error("dropped a task on the %s queue: %s", self.huey.name, exc)
            return
        except Exception:
            self._logger.exception("Error reading from queue")
            return
        if self.outage.succeeded():
            log.info("the %s queue is readable again", self.huey.name)
        if task is None:
            if not self.huey.storage.blocking:
                self.sleep()
            return
        self.delay = self.default_delay
        try:
            self.huey.execute(task, now)
        except Exception:
            self._logger.exception("Unhandled error during execution of task %s.", task.id)


class _Scheduler(Scheduler):
    """Huey's scheduler, but the Worker decides where a due periodic task goes (not into a paused queue)."""

    on_periodic = staticmethod(lambda due: None)

    def enqueue_periodic_tasks(self, now):
        self.on_periodic(self.huey.read_periodic(now))


class PausableConsumer(Consumer):
    """A Huey consumer driven by the Worker: no signal handlers of its own, and pausable threads."""

    worker_class = _PausableWorker
    scheduler_class = _Scheduler

    def __init__(self, huey, is_paused, on_periodic=None, **kwargs):
        self._is_paused = is_paused  # before Consumer.__init__, which creates the worker threads
        self._on_periodic = on_periodic
        super().__init__(huey, **kwargs)

    def _create_scheduler(self):
        scheduler = super()._create_scheduler()
        if self._on_periodic:
            scheduler.on_periodic = self._on_periodic
        return scheduler

    def _create_worker(self):
        worker = super()._create_worker()
        worker.is_paused = self._is_paused
        worker.outage = Backoff()
        return worker

    def _set_signal_handlers(self):
        pass

    def check_worker_health(self):
        """Huey's check, but a thread that left because the consumer is stopping (a recycle sets the
        stop flag from a job's own thread) is not dead and is not restarted. The flag is read after
        the thread is seen gone: a thread leaves for the flag only once it is set."""
        for i, (worker, thread) in enumerate(self.worker_threads):
            if not thread.is_alive() and not self.stop_flag.is_set():
                self._logger.warning("Worker %d died, restarting.", i + 1)
                worker = self._create_worker()
                thread = self._create_process(worker, f"Worker-{i + 1}")
                thread.start()
                self.worker_threads[i] = (worker, thread)
        if not self.scheduler.is_alive() and not self.stop_flag.is_set():
            self._logger.warning("Scheduler died, restarting.")
            self.scheduler = self._create_process(self._create_scheduler(), "Scheduler")
            self.scheduler.start()
