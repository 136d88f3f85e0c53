"""The fast tier: no process, no redis-server, no Qt. A real Library on a fresh data folder, the
in-process MemoryTransport (Huey's MemoryHuey queues; ``run_next`` runs a real attempt in the
test's thread) and a clock the test moves by hand.

Nothing here reads the user's settings file or environment (the root conftest's autouse
``isolated_config`` makes sure of that too). The fixtures here replace the root's ``settings``
and ``library`` (which are parametrised over redis-server) for the tests of this folder only.
"""

from __future__ import annotations

import pytest

from snapdesk.config import load_settings
from snapdesk.engine.library import Library
from snapdesk.engine.transport.memory import MemoryTransport

from unit_helpers import Clock, write_png


@pytest.fixture(autouse=True)
def no_test_hooks(monkeypatch):
    """The attempt's test hooks come only from the test that sets them (see ``faults``)."""
    for name in ("SNAPDESK_TEST_FAULTS", "SNAPDESK_TEST_CLOCK_SKEW"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def settings(tmp_path, request):
    """A library folder of the test's own; thumbnail jobs only unless ``@pytest.mark.jobs("...")``.
    ``local_workers="no"``: a Library on the memory transport must not start worker processes."""
    marker = request.node.get_closest_marker("jobs")
    return load_settings(env={}, settings_file=tmp_path / "no-settings.json", data_dir=tmp_path / "data",
                         secret="unit-secret", retry_backoff_ms=100, local_workers="no", lease_seconds=30,
                         job_types=marker.args[0] if marker else "thumbnail")


@pytest.fixture
def transport(settings, clock):
    t = MemoryTransport(settings, clock=clock)
    yield t
    t.close()


@pytest.fixture
def library(settings, transport, clock):
    lib = Library(settings, transport=transport, clock=clock)
    yield lib
    lib.close()


@pytest.fixture
def photo(tmp_path):
    return write_png(tmp_path / "in" / "photo.png")


@pytest.fixture
def faults(monkeypatch):
    """Faults for the attempt's own test hook (SNAPDESK_TEST_FAULTS), read when run_next installs the worker."""
    import json

    def set_(**rules):
        monkeypatch.setenv("SNAPDESK_TEST_FAULTS", json.dumps(rules))

    return set_
