"""The main window, in rooms (as qutebrowser's ``mainwindow/``):

- ``mainwindow.py``: ``MainWindow``: builds itself and wires its parts; the sessions and the selection;
- ``actions.py``: the registry of actions, the menu bar and the context menus;
- ``commands.py``: what the person asks of documents and sessions (retry, cancel, export, ...);
- ``imports.py``: drag and drop and the Add dialogs, which make new sessions;
- ``sessions_pane.py``: the sessions list and its Add button;
- ``session_header.py``: the header over the grid: the session, filters, search;
- ``progress.py``: the taskbar's progress and the notice when a session is done;
- ``dialogs.py``: About, Settings, the Jobs view;
- ``style.py``: the style sheet; ``state.py``: geometry and panes kept between runs.

Whatever runs off the GUI thread goes through ``gui/operations.py``.
"""

from .imports import local_paths
from .mainwindow import MainWindow
from .state import ui_settings
from .style import STYLE

__all__ = ["STYLE", "MainWindow", "local_paths", "ui_settings"]
