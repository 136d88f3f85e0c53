"""What both tiers share: no test reads the user's settings or environment.

tests/unit: seconds, no process, no redis-server, no Qt. tests/integration: real redis-server,
worker processes and Qt widgets on the offscreen platform (its own conftest.py)."""

import os

import pytest


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    """No test reads the user's settings file or environment."""
    for name in list(os.environ):
        if name.startswith(("SNAPDESK_", "JOB_", "OPENAI_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("SNAPDESK_CONFIG_DIR", str(tmp_path / "config"))
