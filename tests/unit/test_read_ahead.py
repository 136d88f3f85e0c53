"""``importer.read_ahead``: the next batch of a scan is made on a thread while the owner adds one."""

from __future__ import annotations

import threading

import pytest

from snapdesk.engine.importer import read_ahead


def test_items_come_in_order_and_each_is_made_on_another_thread():
    makers = []

    def items():
        for i in range(5):
            makers.append(threading.current_thread())
            yield i

    assert list(read_ahead(items())) == [0, 1, 2, 3, 4]
    assert threading.current_thread() not in makers


def test_the_maker_runs_ahead_of_the_caller_by_at_most_the_depth():
    made = []
    pause = threading.Event()

    def items():
        for i in range(10):
            made.append(i)
            yield i

    ahead = read_ahead(items(), depth=2)
    assert next(ahead) == 0
    # While the caller works on item 0 the maker goes on: 1 and 2 wait in the queue, 3 waits for room.
    for _ in range(500):
        if len(made) == 4:
            break
        pause.wait(0.01)
    assert made == [0, 1, 2, 3]
    pause.wait(0.1)
    assert made == [0, 1, 2, 3]  # and nothing more until the caller takes one
    assert list(ahead) == list(range(1, 10))


def test_an_error_of_the_maker_is_raised_to_the_caller_after_what_came_before():
    def items():
        yield "first"
        raise OSError("the disk went away")

    got = []
    with pytest.raises(OSError, match="the disk went away"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == ["first"]


def test_a_caller_that_stops_early_stops_the_maker():
    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield i

    for item in read_ahead(items(), depth=2):
        if item == 1:
            break
    count = len(made)
    assert count <= 5  # what was made ahead, and no more
    assert not [t for t in threading.enumerate() if t.name == "snapdesk-read-ahead"]
