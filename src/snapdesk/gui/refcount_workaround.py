"""A work-around for a defect of the Qt binding, applied when the ``gui`` package is imported.

The PySide6/shiboken6 6.12.0 wheels, on Python 3.11, return ``None`` from every C++ method
without a result (``QPainter.save()``, ``QRect.setWidth()``, a Python ``paintEvent`` or a
``data()`` that returns None, called from C++) without taking a reference to it, and
``SignalInstance.emit`` does the same with ``True``. On Python 3.12 and later these objects
are immortal and nothing happens; on 3.11 each such call drops a reference that was never
taken, and after some seconds of painting the interpreter aborts with "none_dealloc:
deallocating None" (or ``bool_dealloc``).

At import this module measures whether the binding loses references to ``None`` and
``True``; when it does (and only on an interpreter where they are not immortal) it gives
those two objects a reserve of 2**40 references, which is what Python 3.12 does for them
anyway. With a binding without the defect it does nothing. ``tests/integration/gui/test_gui_models.py``
fails if the reserve is missing while the defect is present.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, QRect, Signal

RESERVE = 1 << 40
_CALLS = 64


class _Probe(QObject):
    probed = Signal()


def _loss(obj, action) -> int:
    """References to ``obj`` that ``_CALLS`` calls of ``action`` drop (0 when all is well)."""
    before = sys.getrefcount(obj)
    for _ in range(_CALLS):
        action()
    return max(0, before - sys.getrefcount(obj))


def _void_call() -> None:
    QRect(0, 0, 1, 1).setWidth(2)


_PROBE = _Probe()


def _emit() -> None:
    _PROBE.probed.emit()


def leaks() -> dict[str, int]:
    """How many references to None and True the binding drops per call (measured now)."""
    return {"None": round(_loss(None, _void_call) / _CALLS), "True": round(_loss(True, _emit) / _CALLS)}


def _add_references(obj, n: int) -> None:
    ctypes.c_ssize_t.from_address(id(obj)).value += n


def apply() -> dict[str, int]:
    """Give None and True their reserve if the binding leaks them; what was measured."""
    measured = leaks()
    # ob_refcnt is the first field of an object in CPython, except in a trace-refs debug build.
    if sys.version_info < (3, 12) and sys.implementation.name == "cpython" and not hasattr(sys, "getobjects"):
        for name, obj in (("None", None), ("True", True)):
            if measured[name] and sys.getrefcount(obj) < RESERVE:
                _add_references(obj, RESERVE)
    return measured


MEASURED = apply()
