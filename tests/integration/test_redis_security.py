"""A farm's Redis locked down: TLS (rediss://, a private CA, client certificates) and an ACL user
with only SnapDesk's keys, each against a real redis-server of the test's own and a real worker.

The narrowest ACL rule that works (checked below: ACL LOG stays empty through a whole run, with
a retry and a document read from Redis; when this was written, leaving out any one key pattern
or command category made Redis refuse something SnapDesk or Huey needs):

    user snapdesk on >PASSWORD resetchannels ~snapdesk:* ~huey.redis.snapdesk_* ~huey.schedule.snapdesk_*
        ~huey.results.snapdesk_* -@all +@read +@write +@connection +@transaction +@scripting +time -@dangerous

(see ACL_KEYS and ACL_COMMANDS for why each part is needed)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from snapdesk.config import load_settings
from snapdesk.engine.library import Library

from helpers import WorkerProcess, wait_for, write_photos

#: The keys SnapDesk uses: its own (events, workers, paused queues, cancel marks, document
#: copies, the LLM rate window; engine/transport/redis.py RedisTransport.PREFIX) and Huey's for its
#: queues named snapdesk_<queue> (huey/storage.py RedisStorage): the queue itself (a sorted set
#: with priorities), the schedule of delayed tasks (retries' backoff), and the hash Huey reads
#: revocations from before it runs a task. No pub/sub channel is used.
ACL_KEYS = ("resetchannels ~snapdesk:* ~huey.redis.snapdesk_* ~huey.schedule.snapdesk_* "
            "~huey.results.snapdesk_*")
#: Reads and writes of those keys (streams, sorted sets, hashes, sets, strings, DEL, SCAN for
#: maintenance), PING and HELLO/AUTH (@connection), MULTI/EXEC (the heartbeat's pipeline),
#: EVALSHA/SCRIPT LOAD (Huey's pop of due scheduled tasks) and EVAL (the LLM rate limit), TIME
#: (in no category but @fast: worker heartbeats and the rate limit go by the server's clock);
#: nothing @dangerous (no FLUSHALL, KEYS, CONFIG, INFO, MONITOR, DEBUG). Redis checks the
#: commands a script runs against the same rules.
ACL_COMMANDS = "-@all +@read +@write +@connection +@transaction +@scripting +time -@dangerous"
PASSWORD = "acl-pa55-for-snapdesk"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            return client.ping()
        finally:
            client.close()
    except (redis.ConnectionError, redis.TimeoutError):
        return False


class RedisServerExited(AssertionError):
    pass


class RedisServer:
    """A private redis-server listening on ``port`` (plain or TLS, as ``args`` say), its files in
    ``folder``; ``stop`` ends it (the fixture does)."""

    def __init__(self, folder: Path, port: int, *args: str):
        self.port = port
        self.folder = folder
        self.log_path = folder / f"redis-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [shutil.which("redis-server"), *args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(folder)], stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, url: str) -> None:
        """Until a client on ``url`` gets an answer; RedisServerExited if the server ends first."""
        def ready():
            if self.proc.poll() is not None:
                raise RedisServerExited(f"redis-server exited ({self.proc.returncode}): {self.log()}")
            return _answers(url)

        wait_for(ready, timeout=10, message=f"redis-server on port {self.port}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def redis_servers():
    """Start private redis-servers with ``start(folder, port, *args)``; all are stopped at the end."""
    servers = []

    def start(folder: Path, port: int, *args: str) -> RedisServer:
        server = RedisServer(folder, port, *args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- TLS -------------------------------------------------------------------------------------
def _openssl(folder: Path, *args: str) -> None:
    done = subprocess.run([shutil.which("openssl"), *args], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, f"openssl {' '.join(args)} failed: {done.stderr}"


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> dict:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate whose key is
    encrypted with a password, made with the openssl command (the `cryptography` package is not
    among SnapDesk's dependencies). EC keys: quick to make."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is not installed (apt install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(folder, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=SnapDesk test CA")
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    (folder / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl(folder, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=snapdesk-{name}")
        _openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
    _openssl(folder, "pkey", "-in", "client.key", "-aes256", "-passout", "pass:client-key-pa55",
             "-out", "client-encrypted.key")
    return {"ca": folder / "ca.crt", "server_cert": folder / "server.crt", "server_key": folder / "server.key",
            "client_cert": folder / "client.crt", "client_key": folder / "client-encrypted.key",
            "client_key_password": "client-key-pa55"}


def _tls_server(redis_servers, tmp_path, tls, auth_clients: str) -> tuple[RedisServer, str]:
    """A redis-server that speaks only TLS, once it answers, and the rediss:// URL that reaches it
    (with this test's CA, and the client certificate when it asks for one). Skips when this
    redis-server was built without TLS."""
    port = _free_port()
    server = redis_servers(tmp_path, port, "--port", "0", "--tls-port", str(port), "--tls-cert-file",
                           str(tls["server_cert"]), "--tls-key-file", str(tls["server_key"]), "--tls-ca-cert-file",
                           str(tls["ca"]), "--tls-auth-clients", auth_clients)
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={tls['ca']}"
    if auth_clients != "no":
        url += (f"&ssl_certfile={tls['client_cert']}&ssl_keyfile={tls['client_key']}"
                f"&ssl_password={tls['client_key_password']}")
    try:
        server.wait_ready(url)
    except RedisServerExited:
        # A build without TLS refuses the tls-* options ("Bad directive or wrong number of
        # arguments" for tls-port) or says TLS is not supported.
        log = server.log().lower()
        if "tls" in log and any(s in log for s in ("bad directive", "not supported", "unsupported", "without tls")):
            pytest.skip(f"this redis-server was built without TLS: {server.log().strip()[-300:]}")
        raise
    return server, url


def _farm_settings(tmp_path: Path, url: str, name="data"):
    return load_settings(env={}, data_dir=tmp_path / name, redis_url=url, secret="farm-secret-for-tests",
                         local_workers="no", job_types="thumbnail", retry_backoff_ms=100, lease_renew_seconds=1)


def _photos_through_the_farm(tmp_path: Path, url: str, count=3, worker_args=("--redis",), faults=None,
                             unreadable=()) -> tuple[dict, WorkerProcess]:
    """``count`` photos submitted by a Library on ``url`` and made by a real worker process on
    ``url``: the session's report and the (stopped) worker. ``worker_args`` ("--redis",) passes
    the URL on the worker's command line; () leaves it in REDIS_URL only. The photos numbered in
    ``unreadable`` are deleted once submitted, so the worker reads their copies from Redis."""
    settings = _farm_settings(tmp_path, url)
    photos = write_photos(tmp_path / "photos", count, width=320, height=240)
    args = ["--data-dir", str(settings.data_dir), *([worker_args[0], url] if worker_args else [])]
    with Library(settings) as library:
        session, _ = library.submit([tmp_path / "photos"])
        for i in unreadable:
            photos[i].unlink()  # as if the worker ran on a machine that cannot see this folder
        worker = WorkerProcess(settings, *args, faults=faults, log_path=tmp_path / "worker.log")
        try:
            assert library.wait(session, timeout=60), (library.report(session)["counts"], worker.log())
            return library.report(session), worker
        finally:
            worker.stop()


def _all_complete(report: dict, count: int) -> bool:
    return (report["counts"]["documents"]["complete"] == count
            and all(d["status"] == "complete" and d["jobs"]["thumbnail"]["state"] == "complete"
                    for d in report["documents"]))


#: What redis-py says when a TLS port drops a client that spoke plain Redis to it (a reset when
#: the server closes with the client's bytes unread, else a close).
DROPPED = "Connection reset by peer|Connection closed by server"


def test_a_farm_over_tls_with_a_private_ca(redis_servers, tmp_path, tls):
    server, url = _tls_server(redis_servers, tmp_path, tls, auth_clients="no")
    report, worker = _photos_through_the_farm(tmp_path, url)
    assert _all_complete(report, 3), report["counts"]
    assert report["transport"] == f"redis {url}"  # nothing secret in it: shown whole
    assert "Traceback" not in worker.log()


def test_the_tls_port_without_tls_or_without_the_ca_fails_at_once_and_says_why(redis_servers, tmp_path, tls):
    server, _ = _tls_server(redis_servers, tmp_path, tls, auth_clients="no")
    plain = redis.Redis.from_url(f"redis://127.0.0.1:{server.port}/0", socket_connect_timeout=5, socket_timeout=5)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError, match=DROPPED):
        plain.ping()  # the server drops a client that does not start TLS: no hang
    assert time.monotonic() - started < 3
    unverified = redis.Redis.from_url(f"rediss://127.0.0.1:{server.port}/0", socket_connect_timeout=5, socket_timeout=5)
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        unverified.ping()  # the system's CAs do not know the farm's own
    # SnapDesk's health probe says so too (what `snapdesk health` prints).
    with Library(_farm_settings(tmp_path, f"redis://127.0.0.1:{server.port}/0")) as library:
        started = time.monotonic()
        health = library.health()
    assert not health["ok"] and time.monotonic() - started < 15
    assert re.search(DROPPED, health["checks"][0]["detail"]), health


def test_client_certificates_go_in_the_url_with_the_keys_password_hidden(redis_servers, tmp_path, tls):
    """--tls-auth-clients yes: ssl_certfile, ssl_keyfile and ssl_password (for an encrypted key)
    all go through the URL's query; the report and the worker's log show the password as ***."""
    server, url = _tls_server(redis_servers, tmp_path, tls, auth_clients="yes")
    assert "&ssl_certfile=" in url and "&ssl_password=" in url
    without_certificate = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={tls['ca']}"
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(without_certificate, socket_connect_timeout=5, socket_timeout=5).ping()
    report, worker = _photos_through_the_farm(tmp_path, url)
    assert _all_complete(report, 3), report["counts"]
    assert report["transport"] == f"redis {url.replace(tls['client_key_password'], '***')}"
    assert "ssl_password=***" in worker.log() and tls["client_key_password"] not in worker.log()


# -- ACL -------------------------------------------------------------------------------------
@pytest.fixture
def acl_server(redis_servers, tmp_path):
    """A redis-server whose default user is off: SnapDesk's ACL user, and an admin for the test."""
    port = _free_port()
    # redis-server takes each word of a config line as its own argument.
    server = redis_servers(tmp_path, port, "--port", str(port), "--user", "default", "off",
                           "--user", "snapdesk", "on", f">{PASSWORD}", *ACL_KEYS.split(), *ACL_COMMANDS.split(),
                           "--user", "admin", "on", ">admin-pa55", "~*", "&*", "+@all")
    server.admin = redis.Redis.from_url(f"redis://admin:admin-pa55@127.0.0.1:{server.port}/0")
    server.wait_ready(f"redis://admin:admin-pa55@127.0.0.1:{server.port}/0")
    yield server
    server.admin.close()


def test_a_farm_as_an_acl_user_with_only_snapdesks_keys(acl_server, tmp_path):
    url = f"redis://snapdesk:{PASSWORD}@127.0.0.1:{acl_server.port}/0"
    # The URL in REDIS_URL only (not on the worker's command line, where `ps` would show it). The
    # first photo fails its first attempt, so its retry waits on Huey's schedule; the second is
    # read from its copy in Redis.
    report, worker = _photos_through_the_farm(tmp_path, url, worker_args=(), unreadable=[1],
                                              faults={"thumbnail": {"match": "photo-000", "fail_attempts": 1}})
    assert _all_complete(report, 3), report["counts"]
    assert sorted(d["jobs"]["thumbnail"]["attempts"] for d in report["documents"]) == [1, 1, 2]
    assert report["transport"] == f"redis redis://snapdesk:***@127.0.0.1:{acl_server.port}/0"
    assert PASSWORD not in worker.log() and "Traceback" not in worker.log()
    # What else an owner does on the farm, under the same user.
    with Library(_farm_settings(tmp_path, url)) as library:
        library.pause("thumbnail")
        assert library.paused_queues() == {"thumbnail"}
        library.resume("thumbnail")
        library.trim_expired()
        library.statistics()
        assert library.health()["checks"][0]["ok"]
        assert library.transport.acquire_rate("summary", 60) == 0  # JOB_RATE_LLM's window: a Lua script
    # The Settings dialog's Test connection (INFO is @dangerous: it asks HELLO for the version).
    from snapdesk.gui.settings_dialog import _check_redis

    answer = _check_redis(url)
    assert re.fullmatch(r"connected to Redis \d+\.\d+\.\d+ at (.*)", answer)
    assert answer.endswith(f" at redis://snapdesk:***@127.0.0.1:{acl_server.port}/0")
    # Redis refused nothing SnapDesk or Huey asked for...
    assert acl_server.admin.acl_log() == []
    keys = {k.decode() for k in acl_server.admin.keys("*")}
    assert all(k.startswith(("snapdesk:", "huey.")) for k in keys), keys
    # ...and the user can touch nothing else.
    client = redis.Redis.from_url(url)
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("someone-else:key", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()
    client.close()


@pytest.mark.parametrize("userinfo", ["snapdesk:wrong-pa55", "nobody:wrong-pa55", ""])
def test_a_wrong_password_is_a_quick_clear_error(acl_server, tmp_path, userinfo):
    url = f"redis://{userinfo + '@' if userinfo else ''}127.0.0.1:{acl_server.port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    started = time.monotonic()
    with pytest.raises(redis.AuthenticationError) as error:
        client.ping()
    assert time.monotonic() - started < 2
    assert "wrong-pa55" not in str(error.value)
    client.close()
    with Library(_farm_settings(tmp_path, url)) as library:
        health = library.health()
    detail = health["checks"][0]["detail"]
    assert not health["ok"] and "wrong-pa55" not in str(health)
    assert ("invalid username-password pair" in detail or "Authentication required" in detail), detail
    from snapdesk.gui.settings_dialog import _check_redis

    with pytest.raises(RuntimeError) as error:
        _check_redis(url)
    assert "wrong-pa55" not in str(error.value) and f"127.0.0.1:{acl_server.port}" in str(error.value)
