"""The Settings dialog: where the work runs (this computer or a Redis worker farm), how much at
once, retries, where the library lives, the language model for summaries, and the vision and
embeddings models for pictures and search by meaning. It edits ``settings.json`` in the config folder,
the file ``config.load_settings`` reads; environment variables still win, so a field set by one
is shown but cannot be changed here. The Test buttons' checks run as ``operations.check_settings``
tasks, on threads of their own: they wait on the network, which the owner thread must never do.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..config import Settings, default_data_dir
from . import operations

#: (Settings field, label, kind) in the order shown; kind is "text", "secret", "int", "ms", "folder"
#: or a tuple of choices.
FIELDS = {
    "Where the work runs": [
        ("redis_url", "Redis URL", "text"),
        ("secret", "Farm secret", "secret"),
        ("local_workers", "Workers on this computer", ("auto", "yes", "no")),
        ("data_dir", "Library folder", "folder"),
    ],
    "How much at once": [
        ("concurrency_thumbnail", "Thumbnail jobs", "int"),
        ("concurrency_ocr", "OCR jobs", "int"),
        ("concurrency_llm", "Summary jobs", "int"),
    ],
    "When a job fails": [
        ("retry_attempts", "Attempts per job", "int"),
        ("retry_backoff_ms", "First wait before a retry", "ms"),
    ],
    "Summaries": [
        ("openai_base_url", "LLM endpoint", "text"),
        ("openai_api_key", "API key", "secret"),
        ("llm_model", "Model", "text"),
    ],
    "Pictures and search by meaning": [
        ("vision_model", "Vision model", "text"),
        ("concurrency_describe", "Description jobs", "int"),
        ("describe_rate_per_minute", "Descriptions a minute", "int"),
        ("embed_base_url", "Embeddings endpoint", "text"),
        ("embed_api_key", "Embeddings API key", "secret"),
        ("embed_model", "Embeddings model", "text"),
    ],
}

PLACEHOLDERS = {
    "redis_url": "empty: this computer only; or redis://host:6379/0",
    "secret": "the same on the app and every worker",
    "openai_base_url": "empty: summaries made offline; or https://…/v1",
    "llm_model": "e.g. gpt-4o-mini",
    "vision_model": "empty: the summaries' model; e.g. gpt-4o-mini, qwen2.5vl:7b",
    "embed_base_url": "empty: the LLM endpoint",
    "embed_api_key": "empty: the LLM endpoint's key",
    "embed_model": "empty: no search by meaning; e.g. text-embedding-3-small",
}

_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}

#: The groups that have a Test button: (its label, the test's name).
TESTS = {"Where the work runs": ("Test connection", "redis"), "Summaries": ("Test endpoint", "llm"),
         "Pictures and search by meaning": ("Test endpoint", "meaning")}


def _check_redis(url: str) -> str:
    if not url:
        return "no Redis URL: everything runs on this computer"
    import redis

    from ..config import redact_url

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
        version = _redis_version(client)
    except redis.RedisError as exc:
        raise RuntimeError(f"cannot reach {redact_url(url)}: {exc}") from None
    finally:
        client.close()
    return f"connected to Redis {version} at {redact_url(url)}"


def _redis_version(client) -> str:
    """The server's version from HELLO, which any user that may connect may send (INFO is
    @dangerous, so an ACL user made as the README says may not), or from INFO before Redis 6."""
    import redis

    try:
        hello = client.execute_command("HELLO")
    except redis.ResponseError:  # Redis 5 has no HELLO
        return str(client.info("server").get("redis_version", "?"))
    if isinstance(hello, (list, tuple)):  # RESP2: a flat list of names and values
        hello = dict(zip(hello[::2], hello[1::2]))
    version = hello.get(b"version", hello.get("version", "?")) if isinstance(hello, dict) else "?"
    return version.decode() if isinstance(version, bytes) else str(version)


def _check_llm(base_url: str, api_key: str, model: str) -> str:
    if not base_url:
        return "no endpoint: summaries are made offline"
    if not model:
        raise RuntimeError("enter the model to ask, e.g. gpt-4o-mini or llama3.1:8b")
    from ..processors.summary import check_endpoint

    return check_endpoint(base_url, api_key, model)


def _check_meaning(base_url: str, api_key: str, vision_model: str, embed_url: str, embed_key: str,
                   embed_model: str) -> str:
    """Describe a small picture with the vision model and embed a word with the embeddings model:
    both answers, or what to fix for each."""
    from ..processors.describe import check_vision
    from ..processors.embed import check_embeddings

    said, failed = [], []
    if not base_url:
        said.append("no LLM endpoint: pictures are described offline")
    elif not vision_model:
        failed.append("enter the vision model (or the summaries' model), e.g. gpt-4o-mini or qwen2.5vl:7b")
    else:
        try:
            said.append(check_vision(base_url, api_key, vision_model))
        except Exception as exc:
            failed.append(f"descriptions: {exc}")
    embed_url, embed_key = embed_url or base_url, embed_key or (api_key if embed_url in ("", base_url) else "")
    if not embed_url or not embed_model:
        said.append("no embeddings endpoint and model: search by meaning is off")
    else:
        try:
            said.append(check_embeddings(embed_url, embed_key, embed_model))
        except Exception as exc:
            failed.append(f"embeddings: {exc}")
    if failed:
        raise RuntimeError("; ".join(failed + said))
    return "; ".join(said)


def _unusable_folder(text: str) -> str | None:
    """Why a folder cannot hold the library, or None when it can (it is created if need be)."""
    if not text:
        return "Choose a folder for the library."
    folder = Path(text).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"Cannot use {folder} for the library: {exc.strerror or exc}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"Cannot use {folder} for the library: it is not writable"
    return None


def env_name(field: str) -> str:
    return _FIELDS[field].metadata["env"]


class SettingsDialog(QDialog):
    """Shows the settings in effect; Save hands the changed ones to ``saved`` (by env name)."""

    saved = Signal(dict)

    def __init__(self, settings: Settings, environ=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(520)
        self.settings = settings
        environ = os.environ if environ is None else environ
        self.editors: dict[str, QWidget] = {}
        self.test_results: dict[str, tuple[QPushButton, QLabel]] = {}
        layout = QVBoxLayout(self)
        note = QLabel("Leave the Redis URL empty to process everything on this computer. With a URL, "
                      "snapdesk-worker processes on other machines share the work; they need the same secret.")
        note.setWordWrap(True)
        note.setObjectName("muted")
        layout.addWidget(note)
        for title, fields in FIELDS.items():
            box = QGroupBox(title)
            form = QFormLayout(box)
            for name, label, kind in fields:
                editor = self._editor(name, kind)
                env = env_name(name)
                if environ.get(env) not in (None, ""):
                    editor.setEnabled(False)
                    editor.setToolTip(f"Set by the environment variable {env}")
                self.editors[name] = editor
                form.addRow(label, self._with_browse(editor) if kind == "folder" else editor)
            if title in TESTS:
                self._add_test(form, title)
            layout.addWidget(box)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _add_test(self, form: QFormLayout, title: str) -> None:
        row = QHBoxLayout()
        button = QPushButton(TESTS[title][0])
        button.setObjectName(f"test-{TESTS[title][1]}")
        result = QLabel()
        result.setObjectName(f"result-{TESTS[title][1]}")
        result.setWordWrap(True)
        row.addWidget(button)
        row.addWidget(result, 1)
        form.addRow(row)
        self.test_results[TESTS[title][1]] = (button, result)
        button.clicked.connect(lambda _=False, which=TESTS[title][1]: self.run_test(which))

    def _text(self, name: str) -> str:
        editor = self.editors[name]
        return editor.text().strip() if editor.isEnabled() else str(getattr(self.settings, name) or "")

    def run_test(self, which: str) -> None:
        """Check the Redis URL or the LLM endpoint as entered, as an ``operations`` Task: on a thread
        of its own, since it may wait seconds on the network, which the owner thread must not."""
        button, result = self.test_results[which]
        button.setEnabled(False)
        result.setText("Testing…")
        if which == "redis":
            check, args = _check_redis, (self._text("redis_url"),)
        elif which == "meaning":
            check, args = _check_meaning, (self._text("openai_base_url"), self._text("openai_api_key"),
                                           self._text("vision_model") or self._text("llm_model"),
                                           self._text("embed_base_url"), self._text("embed_api_key"),
                                           self._text("embed_model"))
        else:
            check, args = _check_llm, (self._text("openai_base_url"), self._text("openai_api_key"),
                                       self._text("llm_model"))

        operations.check_settings(which, check, *args, parent=self) \
            .success(lambda found: self._show_test(which, True, found)) \
            .failure(lambda error: self._show_test(which, False, str(error))).run()

    def _show_test(self, which: str, ok: bool, message: str) -> None:
        button, result = self.test_results[which]
        button.setEnabled(True)
        result.setText(("✓ " if ok else "✗ ") + message)
        result.setProperty("ok", ok)

    def _editor(self, name: str, kind) -> QWidget:
        value = getattr(self.settings, name)
        if kind == "int":
            editor = QSpinBox()
            editor.setRange(1, 64)
            editor.setValue(int(value))
        elif kind == "ms":
            editor = QSpinBox()
            editor.setRange(0, 3_600_000)
            editor.setSingleStep(500)
            editor.setSuffix(" ms")
            editor.setToolTip("Each further retry waits twice as long")
            editor.setValue(int(value))
        elif isinstance(kind, tuple):
            editor = QComboBox()
            editor.addItems(kind)
            editor.setCurrentText(str(value))
        else:
            editor = QLineEdit(str(value or ""))
            editor.setPlaceholderText(PLACEHOLDERS.get(name, ""))
            if kind == "secret":
                editor.setEchoMode(QLineEdit.EchoMode.PasswordEchoOnEdit)
        editor.setObjectName(name)
        return editor

    def _with_browse(self, editor: QLineEdit) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(editor, 1)
        browse = QPushButton("Choose…")
        browse.setObjectName(f"browse-{editor.objectName()}")
        browse.setEnabled(editor.isEnabled())
        browse.clicked.connect(lambda: self._choose_folder(editor))
        layout.addWidget(browse)
        return row

    def _choose_folder(self, editor: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Library folder", editor.text())
        if folder:
            editor.setText(folder)

    def _default(self, name: str):
        return str(default_data_dir()) if name == "data_dir" else _FIELDS[name].default

    def values(self) -> dict[str, object]:
        """What the dialog shows, by environment-variable name; None for a default (the file leaves it out).

        Fields an environment variable sets are left alone."""
        values = {}
        for name, editor in self.editors.items():
            if not editor.isEnabled():
                continue
            if isinstance(editor, QSpinBox):
                value = editor.value()
            elif isinstance(editor, QComboBox):
                value = editor.currentText()
            else:
                value = editor.text().strip()
            values[env_name(name)] = None if value == self._default(name) else value
        return values

    def save(self) -> None:
        self.error.hide()
        url = self.editors["redis_url"].text().strip() if self.editors["redis_url"].isEnabled() else None
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            self.show_error("The Redis URL starts with redis://, rediss:// (TLS) or unix://")
            return
        folder = self.editors["data_dir"]
        if folder.isEnabled() and (problem := _unusable_folder(folder.text().strip())):
            self.show_error(problem)
            return
        secret = self.editors["secret"]
        if url and not (secret.text().strip() if secret.isEnabled() else self.settings.secret):
            self.show_error("A worker farm needs its shared secret: the same SNAPDESK_SECRET as on the workers.")
            return
        self.saved.emit(self.values())

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()
