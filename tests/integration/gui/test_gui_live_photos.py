"""The details panel says what a Live Photo, a filmed clip and a named place are: offscreen, a real
library, real worker processes, real files (pillow-heif, PyAV, a JPEG with IPTC and XMP)."""

from test_gui_window import WAIT, drag_and_drop, rows
from test_dates_and_places import APPLE_TAGS, iptc_segment, placed_jpeg, tagged_clip, xmp_packet
from test_formats import picture, saved


def test_the_details_panel_names_a_live_photo_its_clip_length_and_the_places(window, start_worker, tmp_path, qtbot):
    folder = tmp_path / "roll"
    folder.mkdir()
    (folder / "IMG_0001.HEIC").write_bytes(saved(picture(), "HEIF"))
    (folder / "IMG_0001.MOV").write_bytes(tagged_clip(seconds=3.0))
    (folder / "IMG_0002.MOV").write_bytes(tagged_clip(APPLE_TAGS, seconds=1.0))
    (folder / "IMG_0003.JPG").write_bytes(placed_jpeg(xmp_packet(location="Fushimi Inari", city="Kyōto"),
                                                      iptc_segment(country="Japan"), gps=False))
    start_worker()
    drag_and_drop(window.empty_page, [folder])
    qtbot.waitUntil(lambda: sorted(r.name for r in rows(window)) == ["IMG_0001.HEIC", "IMG_0002.MOV", "IMG_0003.JPG"]
                    and all(r.status == "complete" for r in rows(window)), timeout=WAIT)

    def shown(name):
        index = next(i for i, r in enumerate(rows(window)) if r.name == name)
        window.grid.setCurrentIndex(window.filtered.mapFromSource(window.documents.index(index, 0)))
        qtbot.waitUntil(lambda: window.details.details is not None
                        and window.details.details["path"].endswith(name), timeout=WAIT)
        return window.details.metadata_shown()

    assert shown("IMG_0001.HEIC")["Live Photo"] == "3.0 s clip, IMG_0001.MOV"
    clip = shown("IMG_0002.MOV")
    assert "Live Photo" not in clip  # a clip without its still is a video
    assert clip["Taken"] == "3 August 2019, 18:45:10 (UTC+09:00)"
    assert clip["Camera"] == "Apple iPhone 11"
    assert clip["Place"] == "35.01160, 135.76810 (42.5 m)"
    assert shown("IMG_0003.JPG")["Place"] == "Fushimi Inari, Kyōto, Japan"
