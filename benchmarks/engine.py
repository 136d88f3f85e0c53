"""Engine throughput: SnapDesk's queue, workers, events and library DB beside plain Huey, on both transports.

    python benchmarks/engine.py [--docs 2000 [20000 ...]] [--workers 2] [--threads 4]
                                [--only embedded|redis] [--library-sizes 1000 100000] [--rtt-ms 50]

Measures, in one run on the same machine, documents (or tasks) per second:

- SnapDesk: N distinct 16x16 PNGs (made from --seed) in a folder, the thumbnail job only, W
  ``snapdesk.worker --queues thumbnail --concurrency T`` processes started and registered before
  the clock starts; timed from ``Library.submit([folder])`` until ``Library.wait`` returns, and
  every document must have completed. A fresh data dir per measurement.
- Plain Huey, the floor the engine is measured against: N calls of a no-op task, enqueued one
  ``task(i)`` call each, as a user would, timed until all have run. On SQLite one
  ``huey_consumer app.huey -k process -w W`` (each task leaves a result, counted with
  ``result_store_size``), as Huey comes (a disk flush per transaction), and again with
  ``synchronous=NORMAL`` as SnapDesk's queue commits; on Redis W ``huey_consumer app.huey -k thread
  -w T`` (each task INCRs a counter). Consumers run with ``-q`` (SnapDesk's worker does not log Huey's two lines per task
  either), and on SQLite poll an idle queue every 0.1 s (``-d 0.1 -m 0.1 -b 1``), as SnapDesk's
  worker does, instead of backing off to 10 s.

It prints a table and the ratio SnapDesk / plain for each transport; the goal is at least 0.5.

--library-sizes A B also times a 1000-document submit into a library already holding A, then B
documents (complete documents and jobs put straight into the DB), per document, and prints the
cost ratio B/A (goal: at most 1.3).

--drain N also times the workers alone: N thumbnail tasks queued before they start, the event log
read and emptied as it comes (nothing applied), jobs per second and the workers' CPU per job.

--rtt-ms MS also runs SnapDesk on Redis with the owner (not the workers) reaching Redis through
a delaying TCP proxy (MS/2 each way), beside the direct figure (goal: at least 0.8 of it at 50 ms).

Redis is a private redis-server on a free port (never 6379), without persistence, stopped at the
end. The machine is shared and small: ratios are what to compare, absolute figures move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.util
import io
import multiprocessing
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import peewee
import redis
from PIL import Image

from snapdesk.config import load_settings
from snapdesk.engine import events as ev
from snapdesk.engine.library import Library
from snapdesk.store.db import COMPLETE, Document, Job, UploadSession, db

GOAL_RATIO = 0.5  # SnapDesk / plain Huey as it comes
GOAL_SIZE_RATIO = 1.3  # per-document cost in a library of B documents / in one of A
GOAL_RTT_RATIO, GOAL_RTT_MS = 0.8, 50  # through the delaying proxy / direct
SIZE_DROP = 1000  # documents per submit in the library-size measurement
SECRET = "benchmark-secret"


# -- inputs ------------------------------------------------------------------------------
def make_documents(folder: Path, count: int, seed: int, start: int = 0) -> Path:
    """``count`` 16x16 PNGs, each of its own colour: index ``start + i`` picks it, ``seed`` shifts them all."""
    folder.mkdir(parents=True)
    offset = random.Random(seed).randrange(2**24)
    for i in range(start, start + count):
        rgb = (offset + i * 0x9E3779) % 2**24  # an odd step: distinct colours for up to 2**24 indexes
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF)).save(buf, "PNG")
        (folder / f"doc-{i:06d}.png").write_bytes(buf.getvalue())
    return folder


def clean_env(**extra: str) -> dict:
    """This environment without SnapDesk's settings (the benchmark's own come in ``extra``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAPDESK_", "JOB_")) and k != "REDIS_URL"}
    env.update(SNAPDESK_CONFIG_DIR=os.environ["SNAPDESK_CONFIG_DIR"], **extra)
    return env


# -- processes ---------------------------------------------------------------------------
@contextlib.contextmanager
def started(cmd: list[str], env: dict, log: Path, core: int | None = None):
    """A process in a process group of its own (its forked children too), stopped at the end;
    pinned to one CPU core when ``core`` is given (before it starts, so its threads are too)."""
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=pin)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process's group (a process consumer passes it on to its children), then SIGKILL
    after ``timeout``, or at once on a second Ctrl+C."""
    try:
        _signal_group(proc, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if proc.returncode is None:  # still running: the timeout passed, or a second Ctrl+C came
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the pid is its group's id (start_new_session)
    except ProcessLookupError:
        pass


def check_alive(procs: list[tuple[subprocess.Popen, Path]]) -> None:
    for proc, log in procs:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(proc.args[:4])}... exited with {proc.returncode}; its log:\n{tail}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def redis_server(workdir: Path):
    """A private redis-server on a free port, no persistence; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed (`make redis-server`), or use --only embedded")
    port = free_port()
    assert port != 6379, "never the machine's own Redis"
    workdir.mkdir()
    cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    with started(cmd, clean_env(), workdir / "redis.log") as proc:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        poll(lambda: _pings(client), 10, "redis-server to start", lambda: check_alive([(proc, workdir / "redis.log")]))
        client.close()
        yield url


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def flush(redis_url: str) -> None:
    """Empty the private server between measurements (stale worker entries, queues, counters)."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()


def poll(predicate, timeout: float, what: str, check=lambda: None, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        check()
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


# -- the delaying proxy ------------------------------------------------------------------
class DelayProxy:
    """A TCP proxy on 127.0.0.1 to ``target_port`` that holds every chunk ``rtt_ms / 2`` in each
    direction, keeping their order: a link with that round-trip time. It runs in a process of its
    own: forwarding every byte in the benchmark's process would take the interpreter from the owner,
    which runs there."""

    def __init__(self, target_port: int, rtt_ms: float):
        self.target_port = target_port
        self.delay = rtt_ms / 2000

    def __enter__(self) -> "DelayProxy":
        context = multiprocessing.get_context("spawn")
        here, there = context.Pipe()
        self.process = context.Process(target=_run_proxy, args=(self.target_port, self.delay, there),
                                       name="delay-proxy", daemon=True)
        self.process.start()
        if not here.poll(60):
            self.process.kill()
            raise RuntimeError("the delaying proxy did not start")
        self.port = here.recv()
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.join(10)


def _run_proxy(target_port: int, delay: float, report) -> None:
    asyncio.run(_Proxy(target_port, delay).serve(report))


class _Proxy:
    """The delaying proxy's loop (see ``DelayProxy``)."""

    def __init__(self, target_port: int, delay: float):
        self.target_port, self.delay = target_port, delay

    async def serve(self, report) -> None:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        report.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    async def _serve(self, client_reader, client_writer) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        except (OSError, asyncio.CancelledError):  # a connection reset, or the proxy closing
            pass
        finally:
            client_writer.close()
            upstream_writer.close()

    async def _pipe(self, reader, writer) -> None:
        """Copy ``reader`` to ``writer``, each chunk (and the end) written ``delay`` after it came."""
        loop = asyncio.get_running_loop()
        held: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await held.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(65536)
                held.put_nowait((loop.time() + self.delay, data))
                if not data:
                    break
            await delivering
        finally:
            delivering.cancel()


def ping_ms(url: str, rounds: int = 5) -> float:
    client = redis.Redis.from_url(url)
    client.ping()  # the connection is made
    start = time.perf_counter()
    for _ in range(rounds):
        client.ping()
    client.close()
    return (time.perf_counter() - start) * 1000 / rounds


# -- SnapDesk ----------------------------------------------------------------------------
def snapdesk_settings(data_dir: Path, redis_url: str = ""):
    return load_settings(env={}, data_dir=data_dir, redis_url=redis_url, secret=SECRET if redis_url else None,
                         job_types="thumbnail", local_workers="no")


@contextlib.contextmanager
def snapdesk_workers(data_dir: Path, redis_url: str, workers: int, threads: int, cores: list[int] | None = None):
    """W worker processes on the thumbnail queue, T threads each, connected straight to the transport;
    worker i pinned to ``cores[i]`` when given."""
    env = clean_env(SNAPDESK_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1",
                    **({"REDIS_URL": redis_url, "SNAPDESK_SECRET": SECRET} if redis_url else {}))
    cmd = [sys.executable, "-m", "snapdesk.worker", "--queues", "thumbnail", "--concurrency", str(threads)]
    with contextlib.ExitStack() as stack:
        procs = []
        for i in range(workers):
            log = data_dir / f"worker-{i}.log"
            procs.append((stack.enter_context(started(cmd, env, log, cores[i] if cores else None)), log))
        yield procs


def wait_registered(library: Library, procs: list, timeout: float = 60) -> None:
    poll(lambda: len(library.transport.workers()) >= len(procs), timeout, f"{len(procs)} workers to register",
         lambda: check_alive(procs), interval=0.1)


def time_drop(library: Library, folder: Path, count: int) -> tuple[float, float]:
    """Seconds from submit until wait returns, and of the submit call alone; every document must complete."""
    start = time.perf_counter()
    session, _ = library.submit([folder])
    submitted = time.perf_counter()
    if not library.wait(session, timeout=120 + count * 0.2):
        raise RuntimeError(f"the drop did not finish in time: {dict(library.document_counts(session))}")
    elapsed = time.perf_counter() - start
    counts = library.document_counts(session)
    if counts["total"] != count or counts["complete"] != count:
        raise RuntimeError(f"expected {count} complete documents, got {dict(counts)}")
    return elapsed, submitted - start


def measure_snapdesk(workdir: Path, folder: Path, count: int, workers: int, threads: int, redis_url: str = "",
                     owner_url: str | None = None) -> float:
    """Documents per second through SnapDesk; the owner may reach Redis by another URL (the proxy)."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    with Library(snapdesk_settings(data_dir, owner_url or redis_url)) as library, \
            snapdesk_workers(data_dir, redis_url, workers, threads) as procs:
        wait_registered(library, procs)
        owner, workers_cpu = time.process_time(), cpu_seconds(proc for proc, _ in procs)
        elapsed, _ = time_drop(library, folder, count)
        owner, workers_cpu = time.process_time() - owner, cpu_seconds(proc for proc, _ in procs) - workers_cpu
    print(f"    CPU per document: owner {owner / count * 1000:.2f} ms, workers {workers_cpu / count * 1000:.2f} ms",
          flush=True)
    return count / elapsed


def cpu_seconds(procs) -> float:
    """User and system CPU seconds the processes have used so far (Linux's /proc; 0 elsewhere)."""
    total = 0.0
    for proc in procs:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


# -- plain Huey --------------------------------------------------------------------------
SQLITE_APP = '''
from huey import SqliteHuey
from huey.storage import SqliteStorage


class NormalSync(SqliteStorage):  # synchronous=NORMAL, as SnapDesk's queue commits (Huey's default is FULL)
    def _create_connection(self):
        conn = super()._create_connection()
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn


huey = SqliteHuey("plain", filename={target!r}, results=True, timeout=30,  # SnapDesk's queues wait as long
                  **({{"storage_class": NormalSync}} if {normal!r} else {{}}))


@huey.on_startup()
def ready():
    huey.storage.incr("ready")


@huey.task()
def noop(i):
    return i  # the result Huey stores marks the task done


def ready_count():
    return huey.storage.incr("ready", 0)


def done_count():
    return huey.storage.result_store_size()
'''

REDIS_APP = '''
from huey import RedisHuey

huey = RedisHuey("plain", url={target!r}, results=False)
counter = huey.storage.conn


@huey.on_startup()
def ready():
    counter.incr("plain:ready")


@huey.task()
def noop(i):
    counter.incr("plain:done")


def ready_count():
    return int(counter.get("plain:ready") or 0)


def done_count():
    return int(counter.get("plain:done") or 0)
'''


def load_app(folder: Path, source: str, target: str, **params):
    """Write ``app.py`` into ``folder`` (for the consumers) and load it here too (to enqueue and count)."""
    folder.mkdir(parents=True)
    path = folder / "app.py"
    path.write_text(source.format(target=target, **params))
    spec = importlib.util.spec_from_file_location("app", path)  # named "app" as in the consumers: same task names
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    return app


def huey_consumer() -> str:
    beside = Path(sys.executable).with_name("huey_consumer")
    return str(beside) if beside.exists() else shutil.which("huey_consumer")


def time_tasks(app, count: int) -> float:
    """Seconds to enqueue ``count`` no-op tasks one call each and see them all done."""
    start = time.perf_counter()
    for i in range(count):
        app.noop(i)
    poll(lambda: app.done_count() >= count, 120 + count * 0.05, f"{count} tasks to run")
    return time.perf_counter() - start


def measure_plain_sqlite(workdir: Path, count: int, workers: int, normal: bool = False) -> float:
    """Plain SqliteHuey as it comes (a disk flush per transaction), or with ``normal`` synchronous=NORMAL."""
    app = load_app(workdir, SQLITE_APP, str(workdir / "huey.db"), normal=normal)
    cmd = [huey_consumer(), "app.huey", "-k", "process", "-w", str(workers), "-q", "-d", "0.1", "-m", "0.1", "-b", "1"]
    try:
        with started(cmd, clean_env(PYTHONPATH=str(workdir)), workdir / "consumer.log") as proc:
            procs = [(proc, workdir / "consumer.log")]
            poll(lambda: app.ready_count() >= workers, 60, "the consumer to start", lambda: check_alive(procs))
            return count / time_tasks(app, count)
    finally:
        app.huey.storage.close()


def measure_plain_redis(workdir: Path, count: int, workers: int, threads: int, redis_url: str) -> float:
    app = load_app(workdir, REDIS_APP, redis_url)
    cmd = [huey_consumer(), "app.huey", "-k", "thread", "-w", str(threads), "-q"]
    env = clean_env(PYTHONPATH=str(workdir))
    try:
        with contextlib.ExitStack() as stack:
            procs = []
            for i in range(workers):
                log = workdir / f"consumer-{i}.log"
                procs.append((stack.enter_context(started(cmd, env, log)), log))
            poll(lambda: app.ready_count() >= workers * threads, 60, "the consumers to start",
                 lambda: check_alive(procs))
            return count / time_tasks(app, count)
    finally:
        app.huey.storage.pool.disconnect()


# -- library size ------------------------------------------------------------------------
def prefill(total: int) -> None:
    """Bring the open library up to ``total`` documents, each complete with its thumbnail job, in
    sessions of 1000, straight into the DB (insert_many in chunks)."""
    have = Document.select().count()
    next_id = (Document.select(peewee.fn.MAX(Document.id)).scalar() or 0) + 1
    now = time.time()
    while have < total:
        n = min(SIZE_DROP, total - have)
        session = UploadSession.create(name="prefill", paths=["/prefill"], skipped={}, created_at=now - 86400)
        docs, jobs = [], []
        for doc_id in range(next_id, next_id + n):
            sha = hashlib.sha256(b"prefill %d" % doc_id).hexdigest()
            docs.append({"id": doc_id, "session": session.id, "path": f"/prefill/doc-{doc_id:07d}.png", "size": 82,
                         "sha256": sha, "kind": "image", "mtime": now - 86400, "width": 16, "height": 16,
                         "created_at": now - 86400})
            jobs.append({"document": doc_id, "session": session.id, "type": "thumbnail", "state": COMPLETE,
                         "attempt": 1, "max_attempts": 3, "priority": 0, "progress": 100, "created_at": now - 86400,
                         "queued_at": now - 86400, "started_at": now - 86400, "finished_at": now - 86400,
                         "duration_ms": 5, "worker": "prefill", "result": _thumbnail_result(sha)})
        with db.atomic():
            for model, rows in ((Document, docs), (Job, jobs)):
                for chunk in peewee.chunked(rows, 900 // len(rows[0])):  # within SQLite's 999 variables
                    model.insert_many(chunk).execute()
            # Each document searchable by some text, as an OCR'd library is.
            db.connection().executemany("INSERT INTO search_index (rowid, name, title, summary, text) "
                                        "VALUES (?, ?, '', '', ?)",
                                        [(d["id"], Path(d["path"]).name, _page_text(d["id"])) for d in docs])
        have, next_id = have + n, next_id + n


WORDS = ("invoice receipt total amount due date account payment order customer number tax shipping "
         "address letter dear regards meeting notes project report summary balance credit").split()


def _page_text(doc_id: int, words: int = 150) -> str:
    rng = random.Random(doc_id)
    return " ".join(rng.choice(WORDS) for _ in range(words)) + f" ref {doc_id}"


def _thumbnail_result(sha: str) -> dict:
    """A thumbnail job's result as the owner stores it (sizes, blurhash, file paths)."""
    folder = f"/data/artifacts/{sha[:2]}/{sha}/thumbnail"
    return {"width": 16, "height": 16, "blurhash": "L009m+j[fQj[j[fQfQfQfQfQfQfQ",
            "thumbnails": {name: {"width": 16, "height": 16, "path": f"{folder}/{name}.webp"}
                           for name in ("sm", "md", "lg")}}


def measure_library_sizes(workdir: Path, sizes: list[int], workers: int, threads: int, seed: int,
                          redis_url: str = "") -> list[tuple[float, float]]:
    """Per size: ms per document of a SIZE_DROP-document drop into a library of that many documents
    (submit until wait returns), and of the submit call alone. One library, filled up between drops."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    costs = []
    with Library(snapdesk_settings(data_dir, redis_url)) as library, \
            snapdesk_workers(data_dir, redis_url, workers, threads) as procs:
        wait_registered(library, procs)
        # An untimed drop first: the workers' and the owner's first jobs pay for imports and caches.
        time_drop(library, make_documents(workdir / "warm-up", 100, seed + 1), 100)
        for k, size in enumerate(sizes):
            if Document.select().count() > size:
                raise SystemExit(f"--library-sizes: {size} is less than the library already holds "
                                 f"(the sizes must grow by at least {SIZE_DROP})")
            prefill(size)
            folder = make_documents(workdir / f"drop-{k}", SIZE_DROP, seed, start=k * SIZE_DROP)  # new content
            elapsed, submit = time_drop(library, folder, SIZE_DROP)
            costs.append((elapsed * 1000 / SIZE_DROP, submit * 1000 / SIZE_DROP))
    return costs


def measure_drain(workdir: Path, folder: Path, count: int, workers: int, threads: int,
                  redis_url: str = "") -> tuple[float, float]:
    """The workers alone: ``count`` thumbnail tasks queued (the queue paused) before W workers start;
    once they are registered the queue is resumed, and timed until every job's completion has come
    through the event log, which is read and emptied without applying anything. Jobs per second, and
    the workers' CPU ms per job."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    with Library(snapdesk_settings(data_dir, redis_url)) as library:
        library.pause("thumbnail")
        library.submit([folder])
        with snapdesk_workers(data_dir, redis_url, workers, threads) as procs:
            wait_registered(library, procs)
            key = library.transport.library_key(library.owner)
            cpu, start = cpu_seconds(proc for proc, _ in procs), time.perf_counter()
            library.resume("thumbnail")
            done = 0
            while done < count:  # the log read and emptied as it comes, nothing applied
                check_alive(procs)
                entries = library.transport.read_events(library.owner, block_ms=100, count=1000)
                done += sum(1 for entry in entries
                            if ev.open_sealed(key, library.owner, entry.data).type == ev.EventType.COMPLETE)
                library.transport.ack_events(library.owner, [entry.id for entry in entries])
            elapsed = time.perf_counter() - start
            cpu = cpu_seconds(proc for proc, _ in procs) - cpu
    return count / elapsed, cpu / count * 1000


def measure_remove(workdir: Path, count: int) -> tuple[float, float, int]:
    """Seconds to remove a session of ``count`` documents, each with its thumbnail, OCR and summary
    jobs complete, their timelines, three thumbnail files on disk and a row in the search index,
    from a library that also holds another session as large; seconds until its files were deleted in
    the background too; and the files left behind (0)."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    settings = load_settings(env={}, data_dir=data_dir, local_workers="no")
    with Library(settings) as library:
        prefill(count)  # the session that stays
        first_new = (Document.select(peewee.fn.MAX(Document.id)).scalar() or 0) + 1
        prefill(2 * count)
        sessions = sorted({d.session_id for d in Document.select(Document.session).where(Document.id >= first_new)})
        now = time.time()
        with db.atomic():
            for doc_id, sha in Document.select(Document.id, Document.sha256).where(Document.id >= first_new).tuples():
                session = Document.get_by_id(doc_id).session_id
                folder = library.artifacts_dir / sha[:2] / sha / "thumbnail"
                folder.mkdir(parents=True)
                for name in ("sm", "md", "lg"):
                    (folder / f"{name}.webp").write_bytes(b"RIFF" + bytes(60))
                for job_type in ("ocr", "summary"):
                    Job.insert(document=doc_id, session=session, type=job_type, state=COMPLETE, attempt=1,
                               max_attempts=3, progress=100, finished_at=now, result={"text": "x"}).execute()
            db.execute_sql("INSERT INTO job_event (job_id, type, attempt, at) "
                           "SELECT id, 'job:started', 1, ? FROM job UNION ALL SELECT id, 'job:complete', 1, ? FROM job",
                           (now, now))
            # One session of ``count``: the prefill made sessions of SIZE_DROP; fold them into the first.
            Document.update(session=sessions[0]).where(Document.session.in_(sessions)).execute()
            Job.update(session=sessions[0]).where(Job.session.in_(sessions)).execute()
            UploadSession.delete().where(UploadSession.id.in_(sessions[1:])).execute()
        start = time.perf_counter()
        library.remove_session(sessions[0])
        elapsed = time.perf_counter() - start
        library.trash.wait()
        emptied = time.perf_counter() - start
        left = sum(1 for _ in library.artifacts_dir.rglob("*.webp")) if library.artifacts_dir.exists() else 0
        kept = Document.select().count()
    if kept != count:
        raise RuntimeError(f"removing the session left {kept} documents, not the other session's {count}")
    return elapsed, emptied, left


def measure_questions(workdir: Path, total: int) -> dict[str, float]:
    """What the window asks its owner thread again and again, in a library of ``total`` documents
    (``prefill``): ms each, the median of 5 after one untimed. While one runs, no event is applied."""
    from snapdesk.gui import queries

    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    with Library(snapdesk_settings(data_dir)) as library:
        prefill(total)
        last = UploadSession.select(peewee.fn.MAX(UploadSession.id)).scalar()
        asks = {"housekeeping (every 2 s)": library.housekeeping,
                "the status bar's jobs a minute (every 2 s)": queries.throughput,
                "the sessions list (as their counts change)": queries.session_rows,
                "the Jobs view's statistics (every 2 s while it is shown)": library.statistics,
                "a session's duplicates (every 2 s while its thumbnails complete)": lambda: library.duplicates(last)}
        timings = {}
        for name, ask in asks.items():
            ask()
            times = []
            for _ in range(5):
                start = time.perf_counter()
                ask()
                times.append((time.perf_counter() - start) * 1000)
            timings[name] = statistics.median(times)
    return timings


def measure_scale_out(workdir: Path, count: int, seed: int, redis_url: str) -> dict[int, float]:
    """Documents per second with 1, then 2 single-thread workers, each pinned to a core of its own,
    on ``count`` 12 MP photos (the thumbnail job: about 60 ms of one core each), in a fresh library
    each time. The owner is not pinned."""
    sys.path.insert(0, str(Path(__file__).parent))
    from photos import make_photo

    folder = workdir / "photos"
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"photo-{i:04d}.jpg").write_bytes(make_photo(seed=seed * 1000 + i))
    cores = sorted(os.sched_getaffinity(0))
    rates = {}
    for n in (1, 2):
        if n > len(cores):
            break
        if redis_url:
            flush(redis_url)
        data_dir = workdir / f"data-{n}"
        data_dir.mkdir()
        with Library(snapdesk_settings(data_dir, redis_url)) as library, \
                snapdesk_workers(data_dir, redis_url, n, 1, cores[:n]) as procs:
            wait_registered(library, procs)
            elapsed, _ = time_drop(library, folder, count)
            rates[n] = count / elapsed
    return rates


# -- the run -----------------------------------------------------------------------------
class Run:
    """The measurements of one run, printed as they come and as tables at the end."""

    def __init__(self, args, tmp: Path, redis_url: str | None):
        self.args, self.tmp, self.redis_url = args, tmp, redis_url
        w, t = args.workers, args.threads
        self.labels = {
            "embedded": f"SnapDesk, embedded queue, {w} workers x {t} threads",
            "plain-sqlite": f"plain SqliteHuey, {w} process workers, no-op tasks",
            "plain-sqlite-normal": "the same with synchronous=NORMAL, as SnapDesk's queue commits",
            "redis": f"SnapDesk, Redis, {w} workers x {t} threads",
            "plain-redis": f"plain Huey on Redis, {w} consumers x {t} threads, no-op tasks",
            "redis-rtt": f"SnapDesk, Redis, owner {args.rtt_ms:g} ms RTT away, {w} workers x {t} threads",
        }
        #: Per measurement: documents (or tasks) per second, by count.
        self.rates: dict[str, dict[int, float]] = {}
        #: Per transport: (ms per document, ms per document in submit() alone), by library size.
        self.sizes: dict[str, list[tuple[float, float]]] = {}
        #: Seconds to remove a session, until its files were deleted too, and the files it left behind.
        self.removed: tuple[float, float, int] | None = None
        #: The workers alone, by transport: (jobs per second, workers' CPU ms per job).
        self.drained: dict[str, tuple[float, float]] = {}
        #: Photos per second by number of single-core workers.
        self.scale: dict[int, float] = {}
        #: ms of each question the window asks its owner (``--questions``).
        self.asked: dict[str, float] = {}
        self._workdirs = 0

    def workdir(self, name: str) -> Path:
        self._workdirs += 1
        return self.tmp / f"{self._workdirs:02d}-{name}"

    def record(self, name: str, count: int, measure) -> None:
        if self.redis_url:
            flush(self.redis_url)
        self.rates.setdefault(name, {})[count] = rate = measure(self.workdir(name))
        print(f"  {self.labels[name]}, {count}: {rate:,.1f}/s", flush=True)

    def throughput(self, count: int) -> None:
        a, url = self.args, self.redis_url
        folder = make_documents(self.tmp / f"docs-{count}", count, a.seed)
        if a.only in (None, "embedded"):
            self.record("embedded", count, lambda d: measure_snapdesk(d, folder, count, a.workers, a.threads))
            self.record("plain-sqlite", count, lambda d: measure_plain_sqlite(d, count, a.workers))
            self.record("plain-sqlite-normal", count, lambda d: measure_plain_sqlite(d, count, a.workers, normal=True))
        if a.only in (None, "redis"):
            self.record("redis", count, lambda d: measure_snapdesk(d, folder, count, a.workers, a.threads, url))
            self.record("plain-redis", count, lambda d: measure_plain_redis(d, count, a.workers, a.threads, url))
            if a.rtt_ms:
                with DelayProxy(urlsplit(url).port, a.rtt_ms) as proxy:
                    proxied = f"redis://127.0.0.1:{proxy.port}/0"
                    print(f"  (PING through the proxy: {ping_ms(proxied):.1f} ms)", flush=True)
                    self.record("redis-rtt", count, lambda d: measure_snapdesk(
                        d, folder, count, a.workers, a.threads, url, owner_url=proxied))

    def library_sizes(self) -> None:
        a = self.args
        for name, url in (("embedded", ""), ("redis", self.redis_url)):
            if a.only not in (None, name):
                continue
            if url:
                flush(url)
            self.sizes[name] = measure_library_sizes(self.workdir(f"sizes-{name}"), a.library_sizes, a.workers,
                                                     a.threads, a.seed, url)
            for size, (total, submit) in zip(a.library_sizes, self.sizes[name]):
                print(f"  {name}: {SIZE_DROP} documents into a library of {size}: {total:.2f} ms/document "
                      f"(submit() alone {submit:.2f})", flush=True)

    def scale_out(self) -> None:
        self.scale = measure_scale_out(self.workdir("scale-out"), self.args.scale_out, self.args.seed,
                                       self.redis_url or "")
        for n, rate in self.scale.items():
            print(f"  {n} single-core worker{'s' if n > 1 else ''}, 12 MP photos: {rate:.1f}/s", flush=True)

    def drain(self) -> None:
        a = self.args
        folder = make_documents(self.tmp / "docs-drain", a.drain, a.seed + 2)
        for name, url in (("embedded", ""), ("redis", self.redis_url)):
            if a.only not in (None, name):
                continue
            if url:
                flush(url)
            self.drained[name] = measure_drain(self.workdir(f"drain-{name}"), folder, a.drain, a.workers,
                                               a.threads, url or "")
            rate, cpu = self.drained[name]
            print(f"  the workers alone, {name}, {a.drain} tasks: {rate:,.1f}/s, {cpu:.2f} ms CPU a job", flush=True)

    def questions(self) -> None:
        self.asked = measure_questions(self.workdir("questions"), self.args.questions)
        for name, ms in self.asked.items():
            print(f"  {name}, {self.args.questions} documents: {ms:.1f} ms", flush=True)

    def remove_session(self) -> None:
        self.removed = measure_remove(self.workdir("remove"), self.args.remove_session)
        print(f"  removing a session of {self.args.remove_session} documents: {self.removed[0]:.2f} s "
              f"(its files deleted after {self.removed[1]:.2f} s)", flush=True)

    def report(self) -> None:
        counts = self.args.docs
        print(f"\n{os.cpu_count()} cores; 16x16 PNGs, the thumbnail job only\n")
        rows = [[self.labels[name], *(f"{self.rates[name][n]:,.1f}" for n in counts)]
                for name in ("embedded", "plain-sqlite", "plain-sqlite-normal", "redis", "plain-redis")
                if name in self.rates]
        for name, plain, title in (("embedded", "plain-sqlite", f"embedded (goal >= {GOAL_RATIO})"),
                                   ("embedded", "plain-sqlite-normal", "embedded, plain with synchronous=NORMAL"),
                                   ("redis", "plain-redis", f"Redis (goal >= {GOAL_RATIO})")):
            if name in self.rates:
                rows.append([f"SnapDesk / plain, {title}",
                             *(f"{self.rates[name][n] / self.rates[plain][n]:.2f}" for n in counts)])
        if counts:
            table(["path", *(f"{n} documents or tasks per second" for n in counts)], rows)
        if "redis-rtt" in self.rates:
            direct, proxied = self.rates["redis"], self.rates["redis-rtt"]
            print()
            table(["SnapDesk, Redis: the owner's round trip to Redis", *(f"{n} documents per second" for n in counts)], [
                ["direct", *(f"{direct[n]:,.1f}" for n in counts)],
                [f"{self.args.rtt_ms:g} ms (delaying proxy)", *(f"{proxied[n]:,.1f}" for n in counts)],
                [f"ratio (goal >= {GOAL_RTT_RATIO} at {GOAL_RTT_MS} ms)",
                 *(f"{proxied[n] / direct[n]:.2f}" for n in counts)]])
        if self.sizes:
            (a, b), names = self.args.library_sizes, list(self.sizes)
            rows = [[f"{size} documents", *(f"{self.sizes[name][i][0]:.2f} ({self.sizes[name][i][1]:.2f})"
                                            for name in names)] for i, size in enumerate((a, b))]
            rows.append([f"cost ratio {b}/{a} (goal <= {GOAL_SIZE_RATIO})",
                         *(f"{self.sizes[name][1][0] / self.sizes[name][0][0]:.2f}" for name in names)])
            print()
            table([f"{SIZE_DROP} documents submitted into a library of",
                   *(f"{name}: ms per document (submit() alone)" for name in names)], rows)
        if self.scale:
            print()
            rows = [[f"{n} worker{'s' if n > 1 else ''}, one core each", f"{rate:.1f}"] for n, rate in self.scale.items()]
            if 2 in self.scale:
                rows.append(["speed-up, 2 workers / 1 (goal >= 1.8)", f"{self.scale[2] / self.scale[1]:.2f}"])
            table([f"{self.args.scale_out} 12 MP photos, thumbnails, {'Redis' if self.redis_url else 'embedded'}",
                   "photos per second"], rows)
        if self.drained:
            print()
            table([f"the workers alone ({self.args.workers} x {self.args.threads}), {self.args.drain} queued tasks",
                   "jobs per second", "workers' CPU ms per job"],
                  [[name, f"{rate:,.1f}", f"{cpu:.2f}"] for name, (rate, cpu) in self.drained.items()])
        if self.asked:
            print()
            table([f"the window asks its owner, in a library of {self.args.questions} documents", "ms (median of 5)"],
                  [[name, f"{ms:.1f}"] for name, ms in self.asked.items()])
        if self.removed:
            print()
            table(["removing a session", "seconds (goal < 10 at 20000)",
                   "seconds until its files were deleted in the background", "result files left"],
                  [[f"{self.args.remove_session} documents, 3 jobs each, in a library of "
                    f"{2 * self.args.remove_session}", f"{self.removed[0]:.2f}", f"{self.removed[1]:.2f}",
                    str(self.removed[2])]])


def table(head: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="*", default=[2000], metavar="N",
                        help="documents (and plain tasks) per measurement; several sizes run one after another "
                             "(none: no throughput measurement)")
    parser.add_argument("--workers", type=int, default=2, metavar="W")
    parser.add_argument("--threads", type=int, default=4, metavar="T")
    parser.add_argument("--only", choices=("embedded", "redis"))
    parser.add_argument("--library-sizes", type=int, nargs=2, metavar=("A", "B"),
                        help=f"also time a {SIZE_DROP}-document submit into a library of A, then B documents")
    parser.add_argument("--rtt-ms", type=float, default=0, metavar="MS",
                        help="also run SnapDesk on Redis with the owner behind a proxy adding this round-trip time")
    parser.add_argument("--scale-out", type=int, default=0, metavar="N",
                        help="also time N 12 MP photos through 1, then 2 single-core workers")
    parser.add_argument("--drain", type=int, default=0, metavar="N",
                        help="also time the workers alone on N queued thumbnail tasks (nothing applied)")
    parser.add_argument("--remove-session", type=int, default=0, metavar="N",
                        help="also time removing a session of N documents (OCR'd, with thumbnails on disk)")
    parser.add_argument("--questions", type=int, default=0, metavar="N",
                        help="also time what the window asks its owner thread every few seconds, in a library "
                             "of N documents (embedded)")
    parser.add_argument("--seed", type=int, default=0, help="picks the documents' colours")
    args = parser.parse_args(argv)
    if min(args.docs, default=1) < 1 or args.workers < 1 or args.threads < 1 or args.rtt_ms < 0:
        parser.error("--docs, --workers and --threads must be at least 1, --rtt-ms not negative")
    if args.rtt_ms and args.only == "embedded":
        parser.error("--rtt-ms measures the owner's distance to Redis: not with --only embedded")
    if args.library_sizes and args.library_sizes[1] < args.library_sizes[0] + SIZE_DROP:
        parser.error(f"--library-sizes A B: B must be at least A + {SIZE_DROP} (the first drop stays in the library)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill cleans up as Ctrl+C does
    with tempfile.TemporaryDirectory(prefix="snapdesk-engine-bench-") as tmp, contextlib.ExitStack() as stack:
        tmp = Path(tmp)
        os.environ["SNAPDESK_CONFIG_DIR"] = str(tmp / "config")  # never the user's settings file
        redis_url = stack.enter_context(redis_server(tmp / "redis")) if args.only != "embedded" else None
        run = Run(args, tmp, redis_url)
        for count in args.docs:
            run.throughput(count)
        if args.scale_out:
            run.scale_out()
        if args.drain:
            run.drain()
        if args.remove_session:
            run.remove_session()
        if args.questions:
            run.questions()
        if args.library_sizes:
            run.library_sizes()
        run.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
