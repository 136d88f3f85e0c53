"""Task messages sealed with the secret (JSON, never pickle), and the embedded library's own secret."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from huey.registry import Message
from huey.serializer import Serializer

from ...config import ConfigError


class SignatureError(ValueError):
    """A task message was unsigned or its signature did not match: it is dropped, never run."""


class SignedSerializer(Serializer):  # type: ignore[misc]  # huey ships no types: Serializer is Any
    """Task messages as JSON, sealed (AES-256-GCM: encrypted and authenticated) with a key derived
    from the secret; nothing of a message is read before it is seen to be genuine.

    JSON, not pickle: a holder of the secret can ask a worker to run a job, never to run code."""

    _FIELDS = Message._fields
    _AD = b"snapdesk-task"

    def __init__(self, secret: str):
        super().__init__()
        if not secret:
            raise ConfigError("a secret is needed to sign tasks")
        self._aead = AESGCM(hashlib.sha256(b"snapdesk-task:" + secret.encode()).digest())

    def _serialize(self, data: Message) -> bytes:
        if not isinstance(data, Message) or data.on_complete or data.on_error or data.chord_config:
            raise TypeError("only plain task messages travel on SnapDesk's queues")
        fields = data._asdict()
        for name in ("eta", "expires_resolved"):
            if isinstance(fields[name], datetime.datetime):
                fields[name] = {"datetime": fields[name].isoformat()}
        fields["args"] = list(fields["args"] or ())
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, json.dumps(fields, separators=(",", ":")).encode(), self._AD)

    def _deserialize(self, data: bytes) -> Message:
        data = bytes(data)
        try:
            body = self._aead.decrypt(data[:12], data[12:], self._AD)
        except (InvalidTag, ValueError):
            raise SignatureError("rejected a task with a missing or forged signature") from None
        try:
            fields = json.loads(body)
            for name in ("eta", "expires_resolved"):
                if isinstance(fields.get(name), dict):
                    fields[name] = datetime.datetime.fromisoformat(fields[name]["datetime"])
            fields["args"] = tuple(fields.get("args") or ())
            return Message(**{k: v for k, v in fields.items() if k in self._FIELDS})
        except (ValueError, TypeError, KeyError) as exc:
            raise SignatureError(f"rejected a signed task that is not a task message ({exc})") from None


def library_secret(data_dir: Path) -> str:
    """The embedded library's own signing secret, made on first use and kept in the data dir."""
    path = data_dir / "secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it this very moment
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.01)
        raise ConfigError(f"the library secret {path} is empty; delete it and start again")
    value = secrets.token_hex(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
