"""The desktop app's entry point: ``snapdesk`` and ``snapdesk PATH...`` open the window."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import signal
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from .. import __version__
from ..config import APP_NAME, ConfigError, load_settings

log = logging.getLogger("snapdesk.gui")

EXIT_OK, EXIT_USAGE = 0, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snapdesk", description="Open the SnapDesk window; "
                                     "files and folders given are added as a new session.")
    parser.add_argument("paths", nargs="*", metavar="PATH")
    parser.add_argument("--data-dir", help="the library's data folder (default: SNAPDESK_DATA_DIR or the user data dir)")
    parser.add_argument("--redis", metavar="URL", help="use a Redis worker farm (default: REDIS_URL)")
    parser.add_argument("--quit-after", type=float, metavar="SECONDS", help=argparse.SUPPRESS)  # the smoke test
    return parser


def _setup_logging(data_dir: Path) -> None:
    root = logging.getLogger("snapdesk")
    if any(getattr(h, "_snapdesk_app", False) for h in root.handlers):
        return
    try:
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(data_dir / "logs" / "app.log", maxBytes=2_000_000,
                                                       backupCount=3, encoding="utf-8")
    except OSError:
        return  # the window says what is wrong with the data folder
    handler._snapdesk_app = True
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _install_excepthook() -> None:
    def hook(kind, value, tb):
        log.error("unexpected error", exc_info=(kind, value, tb))
        if QApplication.instance() is not None:
            box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, f"Something went wrong: {value}")
            box.setDetailedText("".join(traceback.format_exception(kind, value, tb)))
            box.exec()
    sys.excepthook = hook


def _no_display() -> bool:
    """Linux without X11 or Wayland (a server, an SSH session): Qt would abort the process."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _close_on_signals(window) -> dict:
    """Ctrl+C in the terminal and SIGTERM (a logout) close the window as its Quit does.

    Returns the handlers they replace, for ``main`` to put back."""
    def close(*_):
        window.close()

    previous = {}
    for name in ("SIGINT", "SIGTERM"):
        if hasattr(signal, name):
            previous[getattr(signal, name)] = signal.signal(getattr(signal, name), close)
    # Python runs signal handlers only between its own bytecodes: let it in now and then.
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)
    return previous


def main(argv: list[str] | None = None) -> int:
    """Open the window; PATH arguments become a new session. Returns the exit code."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if _no_display():
        print("snapdesk: there is no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set).\n"
              "On a server, use the command line: snapdesk submit PATH..., snapdesk status, snapdesk --help",
              file=sys.stderr)
        return EXIT_USAGE
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "snapdesk"])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("snapdesk")
    try:
        settings = load_settings(data_dir=args.data_dir, redis_url=args.redis)
    except ConfigError as exc:
        QMessageBox.critical(None, APP_NAME, f"SnapDesk cannot start: {exc}")
        return EXIT_USAGE
    _setup_logging(Path(settings.data_dir))
    _install_excepthook()

    from .icon import app_icon
    from .window import MainWindow

    app.setWindowIcon(app_icon())

    window = MainWindow(settings, reload_settings=lambda: load_settings(data_dir=args.data_dir, redis_url=args.redis))
    window.libraryFailed.connect(lambda message: QMessageBox.critical(window, APP_NAME, message))
    window.show()
    if args.paths:
        window.import_paths(args.paths)
    if args.quit_after:  # packaging/smoke.py: open the window, then close it as a person would
        QTimer.singleShot(int(args.quit_after * 1000), window.close)
    previous = _close_on_signals(window)
    try:
        code = app.exec()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return EXIT_OK if code == 0 else code


if __name__ == "__main__":
    sys.exit(main())
