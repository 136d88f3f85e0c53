"""Search by meaning and by likeness in the window: the Meaning toggle beside the search field,
"Find similar" for a document's menu, and the ranked results with their scores.

The searches run on the owner thread (they ask the embeddings endpoint for the query's vector);
the results come back to the GUI thread, where the grid is filtered to the hits of the session
shown and this panel lists every hit ranked (the words' hits first, then by meaning), each with its
score. A reason search by meaning cannot run (no embeddings endpoint, a document without a
vector) is shown in the panel instead. Nothing here touches the library but through ``operations``.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QToolButton,
                               QVBoxLayout)

from ..engine import meaning
from . import operations

LIMIT = 50


class MeaningControls(QObject):
    """The toggle, the Find similar action and the results panel; the window places them."""

    #: A result was opened: (session id, document id).
    documentChosen = Signal(int, int)

    def __init__(self, owner, search: QLineEdit, parent=None):
        super().__init__(parent)
        #: The window's LibraryOwner; the window hands over a new one when it reopens the library.
        self.owner = owner
        self.toggle = QToolButton()
        self.toggle.setObjectName("meaningToggle")
        self.toggle.setText("Meaning")
        self.toggle.setCheckable(True)
        self.toggle.setToolTip("Also find documents by meaning (needs an embeddings model, see Settings): "
                               "the words' hits first, then the nearest in meaning, with their scores")
        self.toggle.setAccessibleName("Search by meaning too")
        self.similar_action = QAction("Find Similar", self)
        self.similar_action.setToolTip("The documents most like this one")
        #: Its data: the document's (id, file name), set by the menu that shows it.
        self.similar_action.triggered.connect(lambda: self.similar(*(self.similar_action.data() or (None,))))

        self.panel = QFrame()
        self.panel.setObjectName("meaningResults")
        layout = QVBoxLayout(self.panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        head = QHBoxLayout()
        self.heading = QLabel()
        self.heading.setObjectName("muted")
        self.heading.setWordWrap(True)
        head.addWidget(self.heading, 1)
        close = QToolButton()
        close.setText("×")
        close.setAccessibleName("Close the results")
        close.clicked.connect(self.panel.hide)
        head.addWidget(close)
        layout.addLayout(head)
        self.list = QListWidget()
        self.list.setObjectName("meaningList")
        self.list.setAccessibleName("Documents found, best first, with their scores")
        self.list.setMaximumHeight(150)
        self.list.itemActivated.connect(self._chosen)
        layout.addWidget(self.list)
        self.panel.hide()
        search.textChanged.connect(lambda text: None if text.strip() else self.panel.hide())
        self._generation = 0  # a newer search makes the answer of an older one moot

    # -- searching -------------------------------------------------------------------------
    def search(self, text: str, on_matches) -> None:
        """Words and meaning over every session; ``on_matches({session: ids})`` filters the grid."""
        self._generation += 1
        generation = self._generation

        def found(results: list[dict]) -> None:
            if generation != self._generation:
                return
            by_session: dict[int, set[int]] = {}
            for hit in results:
                by_session.setdefault(hit["session_id"], set()).add(hit["document_id"])
            on_matches(by_session)
            self.show_results(f"Found for “{text}”: its words first, then by meaning", results)

        def failed(error: Exception) -> None:
            if generation != self._generation:
                return
            self._show_problem(error)
            operations.search(self.owner, text).success(on_matches).run()  # the words' hits still filter the grid
        operations.search_meaning(self.owner, text, LIMIT).success(found).failure(failed).run()

    def similar(self, doc_id: int | None, name: str = "") -> None:
        """The documents most like one, its file ``name`` in the heading."""
        if doc_id is None:
            return
        self._generation += 1
        generation = self._generation

        def found(results: list[dict]) -> None:
            if generation == self._generation:
                self.show_results(f"Most like {name or f'document {doc_id}'}", results)

        def failed(error: Exception) -> None:
            if generation == self._generation:
                self._show_problem(error)
        operations.similar(self.owner, doc_id, LIMIT).success(found).failure(failed).run()

    # -- showing ---------------------------------------------------------------------------
    def show_results(self, heading: str, results: list[dict]) -> None:
        self.list.clear()
        for rank, hit in enumerate(results, 1):
            how = f"score {hit['score']:.3f}" if hit.get("match") == "meaning" else "words"
            item = QListWidgetItem(f"{rank}. {os.path.basename(hit['path'])}  ·  {how}"
                                   + (f"  ·  {hit['title']}" if hit.get("title") else ""))
            item.setToolTip(hit["path"])
            item.setData(Qt.ItemDataRole.UserRole, (hit["session_id"], hit["document_id"]))
            self.list.addItem(item)
        self.heading.setText(heading if results else f"{heading}: nothing found")
        self.list.setVisible(bool(results))
        self.panel.show()

    def _show_problem(self, exc: Exception) -> None:
        self.list.clear()
        self.list.hide()
        self.heading.setText(str(exc) if isinstance(exc, meaning.MeaningError) else f"The search failed: {exc}")
        self.panel.show()

    def _chosen(self, item: QListWidgetItem) -> None:
        session_id, doc_id = item.data(Qt.ItemDataRole.UserRole)
        self.documentChosen.emit(session_id, doc_id)
