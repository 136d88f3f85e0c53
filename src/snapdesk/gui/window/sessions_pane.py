"""The left pane: "Sessions" with its Add button (files or a folder) and the list of sessions,
each painted by ``SessionDelegate`` with its progress ring. The window wires what they do."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListView, QToolButton, QVBoxLayout, QWidget

from ..delegates import SessionDelegate
from ..models import SessionModel


class SessionsPane(QWidget):
    MINIMUM_WIDTH = 160

    def __init__(self, sessions: SessionModel, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 10, 0, 8)
        head = QHBoxLayout()
        title = QLabel("Sessions")
        title.setObjectName("section")
        head.addWidget(title, 1)
        self.add_button = QToolButton()  # its menu: the Add Files and Add Folder actions
        self.add_button.setText("Add")
        self.add_button.setToolTip("Add files or a folder as a new session")
        self.add_button.setAccessibleName("Add files or a folder")
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        head.addWidget(self.add_button)
        layout.addLayout(head)
        self.view = QListView()
        self.view.setObjectName("sessions")
        self.view.setAccessibleName("Sessions")
        self.view.setModel(sessions)
        self.view.setItemDelegate(SessionDelegate(self.view))
        self.view.setUniformItemSizes(True)
        # Its rows are painted to the width it has (names elided): never a sideways scroll bar.
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setMouseTracking(True)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        layout.addWidget(self.view)
        self.setMinimumWidth(self.MINIMUM_WIDTH)
