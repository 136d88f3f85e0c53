"""The row of filter buttons above the grid (All, Queued, Running, Failed, Done, Duplicates) with their counts."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QToolButton, QWidget

from .models import FILTER_LABELS


class FilterBar(QWidget):
    """Exclusive, checkable buttons; each says how many documents it would show."""

    #: A button was clicked: the filter's name.
    filterChosen = Signal(str)

    def __init__(self, parent=None, labels: dict[str, str] | None = None):
        super().__init__(parent)
        #: The filters' names on their buttons, in order (``FILTER_LABELS`` unless given).
        self.labels = dict(FILTER_LABELS if labels is None else labels)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QToolButton] = {}
        self.counts: dict[str, int] = {}
        for name, text in self.labels.items():
            b = QToolButton()
            b.setCheckable(True)
            b.setText(text)
            b.setProperty("filter", True)
            b.setObjectName(f"filter-{name}")
            b.clicked.connect(lambda _=False, n=name: self.filterChosen.emit(n))
            self.group.addButton(b)
            self.buttons[name] = b
            layout.addWidget(b)
        self.buttons["all"].setChecked(True)

    def select(self, name: str) -> None:
        self.buttons[name].setChecked(True)

    def set_counts(self, counts: dict[str, int], search: str = "") -> None:
        """The documents each filter shows; with a search, of those that match it."""
        self.counts = dict(counts)
        for name, text in self.labels.items():
            n = counts.get(name, 0)
            b = self.buttons[name]
            b.setText(f"{text}  {n}")
            what = "document" if n == 1 else "documents"
            matching = f" matching “{search}”" if search else ""
            b.setAccessibleName(f"Show {text.lower()}: {n} {what}{matching}")
            b.setToolTip({"all": "Every document of the session",
                          "queued": "Waiting for a worker",
                          "running": "Being processed by a worker now",
                          "failed": "Something failed; the reason is on the tile and in the details",
                          "done": "Every job finished",
                          "duplicates": "Photos that are the same picture as another here (resized, "
                                        "re-encoded or slightly cropped), each group with its largest "
                                        "original first"}[name] + (f" ({n}{matching})"))
