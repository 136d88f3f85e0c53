"""Pictures understood in the window, offscreen: the description, tags and colours in the details
panel, the Meaning toggle beside the search field, Find Similar on a document's menu, and the
Settings dialog's Test endpoint for the vision and embeddings models, against a real local server
and real workers."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton

from snapdesk.gui.models import IdRole

from chat_server import ChatServer
from test_meaning import make_folder

pytestmark = pytest.mark.jobs("thumbnail,describe,embed")
WAIT = 30_000


@pytest.fixture
def chat():
    with ChatServer() as server:
        yield server


def _rows(window):
    return [window.documents.row(r) for r in range(window.documents.rowCount())]


def _select(window, name):
    row = next(r for r in _rows(window) if r.name == name)
    window.grid.setCurrentIndex(window.filtered.mapFromSource(window.documents.index_of(row.id)))
    return row


def test_descriptions_tags_colours_and_search_by_meaning_in_the_window(open_window, settings, start_worker, chat,
                                                                       tmp_path, qtbot):
    settings = settings.replace(openai_base_url=chat.base_url, llm_model="tiny", vision_model="tiny-vision",
                                embed_model="words")
    make_folder(tmp_path / "photos")
    start_worker(OPENAI_BASE_URL=chat.base_url, SNAPDESK_VISION_MODEL="tiny-vision", SNAPDESK_EMBED_MODEL="words",
                 SNAPDESK_JOBS="thumbnail,describe,embed")
    window = open_window(settings)
    window.import_paths([str(tmp_path / "photos")])
    qtbot.waitUntil(lambda: len(_rows(window)) == 5 and all(r.status == "complete" for r in _rows(window)),
                    timeout=WAIT)

    # The details panel: what the picture shows, its tags as buttons, its colours as swatches.
    _select(window, "red-circle.jpg")
    qtbot.waitUntil(lambda: window.details.findChild(QLabel, "describeText") is not None, timeout=WAIT)
    assert window.details.findChild(QLabel, "describeText").text().startswith("A red circle on a blue background")
    def shown_tags():
        return [b for b in window.details.findChildren(QPushButton, "tag") if b.isVisible()]

    qtbot.waitUntil(lambda: bool(shown_tags()), timeout=WAIT)  # the section is shown once the panel lays out
    tags = shown_tags()
    assert {"red", "circle", "blue"} <= {b.text() for b in tags}
    swatches = [s for s in window.details.findChildren(QLabel, "swatch")]
    assert swatches and swatches[0].accessibleName().startswith("blue ")
    # A tag searches for its documents.
    red = next(r for r in _rows(window) if r.name == "red-circle.jpg")
    qtbot.mouseClick(next(b for b in tags if b.text() == "circle"), Qt.MouseButton.LeftButton)
    assert window.header.search.text() == "circle"
    qtbot.waitUntil(lambda: window.filtered.rowCount() == 3, timeout=WAIT)  # the circles and the copy
    # The document whose tag was clicked is among them: still selected, its details still shown.
    qtbot.waitUntil(lambda: window.grid.currentIndex().data(IdRole) == red.id, timeout=WAIT)
    assert window.details.doc_id == red.id and window.details.findChild(QLabel, "describeText") is not None

    # The Meaning toggle: the words' hits first, then by meaning, ranked, with their scores.
    window.header.meaning.toggle.setChecked(True)
    window.header.search.setText("yellow square on a green background")
    items = window.header.meaning.list
    qtbot.waitUntil(lambda: window.header.meaning.panel.isVisible() and items.count() > 1
                    and "yellow" in window.header.meaning.heading.text(), timeout=WAIT)
    assert items.item(0).text().startswith("1. yellow-square.jpg")
    assert "score" in items.item(items.count() - 1).text()
    assert window.filtered.rowCount() == 5  # every picture is near in some way: all stay in the grid
    assert window.grid.currentIndex().data(IdRole) == red.id and window.details.doc_id == red.id

    # Find Similar on the document's menu: the resized copy first.
    window.header.search.clear()
    row = _select(window, "red-circle.jpg")
    menu = window.grid_menu([row])
    similar = next(a for a in menu.actions() if a.text() == "Find Similar")
    similar.trigger()
    qtbot.waitUntil(lambda: window.header.meaning.panel.isVisible() and items.count() > 0
                    and "Most like" in window.header.meaning.heading.text(), timeout=WAIT)
    assert window.header.meaning.heading.text() == "Most like red-circle.jpg"  # its name, not its number
    assert items.item(0).text().startswith("1. copy-small.png  ·  score 1.000")


def test_without_an_embeddings_model_the_window_says_why(window, start_worker, tmp_path, qtbot):
    make_folder(tmp_path / "photos")
    start_worker()
    window.import_paths([str(tmp_path / "photos")])
    qtbot.waitUntil(lambda: len(_rows(window)) == 5 and all(r.status == "complete" for r in _rows(window)),
                    timeout=WAIT)
    window.header.meaning.toggle.setChecked(True)
    window.header.search.setText("purple")
    qtbot.waitUntil(lambda: window.header.meaning.panel.isVisible() and "no embeddings endpoint is set"
                    in window.header.meaning.heading.text(), timeout=WAIT)
    # The words still find it: its offline description's colours are in the text index.
    qtbot.waitUntil(lambda: window.filtered.rowCount() == 1, timeout=WAIT)
    _select(window, "purple-circle.jpg")
    qtbot.waitUntil(lambda: window.details.findChild(QLabel, "describeText") is not None, timeout=WAIT)
    assert "no vision model is configured" in " ".join(
        label.text() for label in window.details.findChildren(QLabel, "muted"))


def test_the_settings_dialog_tests_the_vision_and_embeddings_models(settings, qtbot):
    from snapdesk.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(settings, environ={})
    qtbot.addWidget(dialog)
    button, result = dialog.test_results["meaning"]

    def test():
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: button.isEnabled() and result.text() != "Testing…", timeout=20_000)
        return result.text()

    assert test() == ("✓ no LLM endpoint: pictures are described offline; no embeddings endpoint and model: "
                      "search by meaning is off")
    with ChatServer() as chat:
        dialog.editors["openai_base_url"].setText(chat.base_url)
        dialog.editors["vision_model"].setText("tiny-vision")
        dialog.editors["embed_model"].setText("words")
        assert test() == ("✓ tiny-vision described a test picture: A plain picture on a red background.; "
                          "words made a vector of 1024 numbers")
        chat.default = "401"
        answer = test()
        assert answer.startswith("✗ descriptions: the LLM endpoint") and "embeddings: the embeddings endpoint" in answer
        assert "refused the API key (401)" in answer


def test_a_session_fits_a_1024_px_window_and_the_search_field_is_never_cut_short(open_window, tmp_path, qtbot):
    make_folder(tmp_path / "photos")
    window = open_window()
    window.import_paths([str(tmp_path / "photos")])  # no worker: a session to show is enough
    header = window.header
    search, filters, retry = header.search, header.filter_bar, header.retry_failed_button
    qtbot.waitUntil(lambda: search.isVisible(), timeout=WAIT)

    def row():
        return "below" if search.y() >= filters.geometry().bottom() else "beside"

    # Where the header cannot hold the filters and the search on one row, the search has a row of its own.
    for width, height, expected in ((1024, 700, {"below"}), (1366, 768, {"below", "beside"}), (1800, 900, {"beside"})):
        window.resize(width, height)
        # nothing cut off: every filter button whole, the search field before its toggle, Retry Failed inside
        qtbot.waitUntil(lambda: window.width() == width and row() in expected
                        and filters.width() >= filters.sizeHint().width()
                        and search.geometry().right() < header.meaning.toggle.x()
                        and retry.geometry().right() <= header.width(), timeout=WAIT)
        # "beach at sunset" is not cut off in the field
        assert search.width() >= 120 and search.fontMetrics().horizontalAdvance("beach at sunset") + 40 < search.width()
