"""The window's actions, made from one registry, and the menus that show them (as Picard keeps its
actions in ``mainwindow/actions.py``): the window wires them, it does not define them.

Each action is a name, a text, what it does (a function of the window) and its shortcut; ``build``
makes them all, sets them on the window as ``<name>_action`` and fills the menu bar from ``MENUS``.
The context menus of the grid and the sessions list offer a subset, only where it can do something.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from ..queries import DocRow, SessionRow
from . import dialogs
from .base import Window


@dataclass(frozen=True)
class ActionSpec:
    text: str
    #: What it does, given the window.
    run: Callable[[Window], Any]
    shortcut: str | None = None
    role: QAction.MenuRole | None = None
    #: Actions of one group are checkable, one of them checked.
    group: str | None = None


def _filter(name: str) -> Callable[[Window], Any]:
    return lambda w: w.set_filter(name)


def _sort(name: str) -> Callable[[Window], Any]:
    return lambda w: w.filtered.set_sort(name)


#: Every action of the window, by name.
ACTIONS: dict[str, ActionSpec] = {
    # File
    "add_files": ActionSpec("Add &Files…", lambda w: w.imports.add_files_dialog(), "Ctrl+O"),
    "add_folder": ActionSpec("Add F&older…", lambda w: w.imports.add_folder_dialog(), "Ctrl+Shift+O"),
    "export_json": ActionSpec("Export Session as &JSON…", lambda w: w.commands.export_dialog("json")),
    "export_csv": ActionSpec("Export Session as &CSV…", lambda w: w.commands.export_dialog("csv")),
    "remove_session": ActionSpec("&Remove Session…", lambda w: w.commands.remove_session()),
    "settings": ActionSpec("&Settings…", lambda w: w.show_settings(), "Ctrl+,", QAction.MenuRole.PreferencesRole),
    "quit": ActionSpec("&Quit", lambda w: w.close(), "Ctrl+Q"),
    # Documents
    "retry": ActionSpec("&Retry Selected", lambda w: w.commands.retry_selected(), "Ctrl+R"),
    "retry_failed": ActionSpec("Retry All &Failed in Session", lambda w: w.commands.retry_session_failed(),
                               "Ctrl+Shift+R"),
    "cancel": ActionSpec("Ca&ncel Selected", lambda w: w.commands.cancel_selected()),
    "reprocess": ActionSpec("Re&process Selected", lambda w: w.commands.reprocess_selected()),
    "cancel_session": ActionSpec("Cancel &Everything Left in Session", lambda w: w.commands.cancel_session()),
    "open": ActionSpec("&Open Original", lambda w: w.commands.open_original()),
    "show": ActionSpec("Show in &Folder", lambda w: w.commands.show_in_folder()),
    "copy": ActionSpec("&Copy Path", lambda w: w.commands.copy_paths(), "Ctrl+Shift+C"),
    "find": ActionSpec("&Search", lambda w: w.header.focus_search(), "Ctrl+F"),
    # View
    "jobs": ActionSpec("&Jobs…", lambda w: w.show_jobs(), "Ctrl+J"),
    "show_all": ActionSpec("Show &All", _filter("all"), "Ctrl+1"),
    "show_queued": ActionSpec("Show &Queued", _filter("queued"), "Ctrl+2"),
    "show_running": ActionSpec("Show &Running", _filter("running"), "Ctrl+3"),
    "show_failed": ActionSpec("Show F&ailed", _filter("failed"), "Ctrl+4"),
    "show_done": ActionSpec("Show &Done", _filter("done"), "Ctrl+5"),
    "show_duplicates": ActionSpec("Show D&uplicates", _filter("duplicates"), "Ctrl+6"),
    "sort_added": ActionSpec("Sort by &Import Order", _sort("added"), group="sort"),
    "sort_taken": ActionSpec("Sort by Date &Taken", _sort("taken"), group="sort"),
    "sort_name": ActionSpec("Sort by &Name", _sort("name"), group="sort"),
    "next_pane": ActionSpec("&Next Pane", lambda w: w.cycle_pane(1), "F6"),
    "previous_pane": ActionSpec("&Previous Pane", lambda w: w.cycle_pane(-1), "Shift+F6"),
    # Help
    "data_folder": ActionSpec("Open &Data Folder", lambda w: w.commands.open_path(str(w.settings.data_dir))),
    "log_folder": ActionSpec("Open &Log Folder",
                             lambda w: w.commands.open_path(str(Path(w.settings.data_dir) / "logs"))),
    "about": ActionSpec("&About SnapDesk", lambda w: dialogs.show_about(w), role=QAction.MenuRole.AboutRole),
}

#: The menu bar: each menu's actions in order, None for a separator.
MENUS: dict[str, list[str | None]] = {
    "&File": ["add_files", "add_folder", None, "export_json", "export_csv", "remove_session", None, "settings",
              None, "quit"],
    "&Documents": ["retry", "retry_failed", "cancel", "reprocess", "cancel_session", None, "open", "show", "copy",
                   None, "find"],
    "&View": ["jobs", None, "show_all", "show_queued", "show_running", "show_failed", "show_done", "show_duplicates", None,
              "sort_added", "sort_taken", "sort_name", None, "next_pane", "previous_pane"],
    "&Help": ["data_folder", "log_folder", None, "about"],
}

#: The sort the grid starts with.
FIRST_SORT = "sort_added"


def build(window: Window) -> dict[str, QAction]:
    """Make every action (``window.<name>_action``; the sorts also in ``window.sort_actions``), fill
    the menu bar, the Add button's menu, and Delete in the sessions list."""
    made: dict[str, QAction] = {}
    groups: dict[str, QActionGroup] = {}
    for name, spec in ACTIONS.items():
        action = QAction(spec.text, window)
        if spec.shortcut:
            action.setShortcut(QKeySequence(spec.shortcut))
        if spec.role is not None:
            action.setMenuRole(spec.role)
        if spec.group:
            action.setCheckable(True)
            action.setChecked(name == FIRST_SORT)
            groups.setdefault(spec.group, QActionGroup(window)).addAction(action)
        action.triggered.connect(lambda _checked=False, run=spec.run: run(window))
        window.addAction(action)
        setattr(window, f"{name}_action", action)
        made[name] = action
    for title, names in MENUS.items():
        menu = window.menuBar().addMenu(title)
        for name in names:
            if name is None:
                menu.addSeparator()
            else:
                menu.addAction(made[name])
    window.sort_actions = {name.removeprefix("sort_"): made[name] for name in ACTIONS if name.startswith("sort_")}

    add_menu = QMenu(window)
    add_menu.addAction(made["add_files"])
    add_menu.addAction(made["add_folder"])
    window.add_button.setMenu(add_menu)
    # Delete in the sessions list removes the selected session (after asking).
    remove = QAction("Remove Session", window.sessions_view)
    remove.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
    remove.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    remove.triggered.connect(lambda: window.commands.remove_session())
    window.sessions_view.addAction(remove)
    return made


def grid_menu(window: Window, rows: list[DocRow]) -> QMenu:
    """The documents' context menu: Retry only where a retry may cure a failure."""
    menu = QMenu(window)
    menu.addAction(window.open_action)
    menu.addAction(window.show_action)
    menu.addAction(window.copy_action)
    menu.addSeparator()
    if any(r.retry_job_ids for r in rows):
        menu.addAction(window.retry_action)
    if any(r.unfinished_job_ids for r in rows):
        menu.addAction(window.cancel_action)
    if any(not r.unfinished_job_ids for r in rows):
        menu.addAction(window.reprocess_action)
    if len(rows) == 1:
        window.header.meaning.similar_action.setData((rows[0].id, rows[0].name))
        menu.addAction(window.header.meaning.similar_action)
    return menu


def session_menu(window: Window, row: SessionRow) -> QMenu:
    """A session's context menu: Retry and Cancel only where they can do something."""
    menu = QMenu(window)
    if row.retryable:
        menu.addAction(window.retry_failed_action)
    if row.queued or row.running:
        menu.addAction(window.cancel_session_action)
    menu.addAction(window.export_json_action)
    menu.addAction(window.export_csv_action)
    menu.addSeparator()
    menu.addAction(window.remove_session_action)
    return menu
