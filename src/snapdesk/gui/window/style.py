"""The window's style sheet: object names and properties, palette colours, so that light and dark
themes both hold. Set again when the system switches between them (``restyle``)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

STYLE = """
QLabel#muted { color: palette(mid); }
QLabel#error { color: #d64541; }
QLabel#section { font-weight: 600; font-size: 11pt; margin-top: 6px; }
QLabel#sessionTitle { font-size: 15pt; font-weight: 600; }
QLabel#sessionInfo { color: palette(mid); }
QLabel#emptyTitle { font-size: 17pt; font-weight: 600; }
QLabel#preview { background: palette(alternate-base); border-radius: 8px; }
QFrame#jobCard { border: 1px solid palette(midlight); border-radius: 8px; background: palette(base); }
QToolButton[filter="true"] { padding: 4px 8px; border: 1px solid palette(midlight); border-radius: 12px; }
QToolButton[filter="true"]:checked { background: palette(highlight); color: palette(highlighted-text);
                                      border-color: palette(highlight); }
QListView#sessions { border: none; background: palette(window); }
QLabel#statusError { color: #d64541; }
QLabel#permanent { border: 1px solid palette(mid); border-radius: 9px; padding: 1px 8px; }
"""


def restyle(widget: QWidget) -> None:
    """Set the style sheet (again). Qt hands the app a new palette when the system switches between
    light and dark, but a style sheet's palette(...) colours were resolved when it was set."""
    widget.setStyleSheet("")
    widget.setStyleSheet(STYLE)
