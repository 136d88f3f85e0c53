"""The desktop window: the only package that imports Qt.

``owner.py`` runs the one Library of the process on a background thread; everything the
window shows arrives from it as plain rows (``queries.py``) over queued signals. ``models.py``
holds ids and a row cache per view, ``delegates.py`` paints them, ``window.py`` puts it
together and ``app.py`` is the entry point.
"""

from . import refcount_workaround  # noqa: F401  (first: a work-around the binding needs before any Qt use)
