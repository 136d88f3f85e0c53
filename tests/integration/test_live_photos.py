"""Live Photos and AVIF thumbnails: a HEIC (or JPEG) and a MOV of the same name are one document, the
still with its clip, whether their folder or the two files are dropped; a MOV alone stays a video. The
three thumbnail sizes come as AVIF too when SNAPDESK_VARIANT_FORMATS says so. Real files made here
(pillow-heif, PyAV), the real scanner, engine and worker processes on both transports, and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from snapdesk.config import ConfigError, load_settings
from snapdesk.engine.importer import Scanner, found_batches
from snapdesk.engine.library import Library
from snapdesk.processors.video import clip_duration
from snapdesk.store.db import LiveClip

from test_dates_and_places import APPLE_TAGS, iptc_segment, placed_jpeg, tagged_clip
from test_formats import picture, saved

from helpers import jpeg_bytes, snapdesk


def heic() -> bytes:
    return saved(picture(), "HEIF")


def scanned(*paths) -> tuple[dict[str, object], Scanner]:
    """What a drop of ``paths`` imports: each document's file name -> its clip's name (None without one)."""
    scanner = Scanner(max_bytes=50 * 2**20)
    found = [f for batch in found_batches(scanner, paths) for f, _ in batch]
    return {f.path.name: f.clip and f.clip.path.name for f in found}, scanner


# ---------------------------------------------------------------------- pairing at import
def test_a_still_and_a_clip_of_the_same_name_are_one_document(tmp_path):
    (tmp_path / "IMG_0001.HEIC").write_bytes(heic())
    (tmp_path / "IMG_0001.MOV").write_bytes(tagged_clip())
    (tmp_path / "IMG_0002.jpg").write_bytes(jpeg_bytes(64, 48))
    (tmp_path / "img_0002.mov").write_bytes(tagged_clip(seconds=1.0))
    (tmp_path / "IMG_0003.MOV").write_bytes(tagged_clip(seconds=1.5))  # no still: a video
    (tmp_path / "IMG_0004.JPG").write_bytes(jpeg_bytes(64, 48, seed=2))  # no clip: a photo
    docs, scanner = scanned(tmp_path)
    assert docs == {"IMG_0001.HEIC": "IMG_0001.MOV", "IMG_0002.jpg": "img_0002.mov", "IMG_0003.MOV": None,
                    "IMG_0004.JPG": None}
    assert scanner.skipped_paths == []  # a clip with its still is not a skipped file


def test_the_two_files_dropped_without_their_folder_pair_too(tmp_path):
    (tmp_path / "IMG_0001.HEIC").write_bytes(heic())
    (tmp_path / "IMG_0001.MOV").write_bytes(tagged_clip())
    (tmp_path / "IMG_0002.MOV").write_bytes(tagged_clip(seconds=1.0))
    docs, _ = scanned(tmp_path / "IMG_0001.MOV", tmp_path / "IMG_0001.HEIC", tmp_path / "IMG_0002.MOV")
    assert docs == {"IMG_0001.HEIC": "IMG_0001.MOV", "IMG_0002.MOV": None}


def test_the_heic_is_the_still_when_a_jpeg_copy_lies_beside_it(tmp_path):
    (tmp_path / "IMG_0001.HEIC").write_bytes(heic())
    (tmp_path / "IMG_0001.JPG").write_bytes(jpeg_bytes(64, 48))
    (tmp_path / "IMG_0001.MOV").write_bytes(tagged_clip())
    docs, _ = scanned(tmp_path)
    assert docs == {"IMG_0001.HEIC": "IMG_0001.MOV", "IMG_0001.JPG": None}


def test_a_clip_whose_still_cannot_be_imported_is_a_video_of_its_own(tmp_path):
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"")
    (tmp_path / "IMG_0001.MOV").write_bytes(tagged_clip())
    docs, scanner = scanned(tmp_path)
    assert docs == {"IMG_0001.MOV": None}
    assert [(Path(path).name, reason) for path, reason, _ in scanner.skipped_paths] == [("IMG_0001.HEIC", "empty")]


def test_a_clip_length_is_read_from_its_header_and_a_damaged_one_is_unknown(tmp_path):
    clip = tmp_path / "clip.mov"
    clip.write_bytes(tagged_clip(seconds=2.5))
    assert clip_duration(clip) == pytest.approx(2.5, abs=0.1)
    clip.write_bytes(tagged_clip(seconds=2.5, fmt="mp4"))
    assert clip_duration(clip) == pytest.approx(2.5, abs=0.1)
    for damaged in (b"", b"\x00\x00\x00\x08moov", b"\xff" * 64, tagged_clip()[:40]):
        clip.write_bytes(damaged)
        assert clip_duration(clip) is None
    assert clip_duration(tmp_path / "gone.mov") is None


# ---------------------------------------------------------------------- through the engine
@pytest.mark.jobs("thumbnail")
def test_a_live_photo_is_one_document_with_its_still_and_its_clip(settings, start_worker, tmp_path):
    roll = tmp_path / "roll"
    roll.mkdir()
    (roll / "IMG_0001.HEIC").write_bytes(saved(picture(), "HEIF"))
    (roll / "IMG_0001.MOV").write_bytes(tagged_clip(APPLE_TAGS, seconds=3.0))
    (roll / "IMG_0002.MOV").write_bytes(tagged_clip(seconds=2.0))
    with Library(settings.replace(variant_formats="webp,avif")) as library:
        start_worker()
        session, _ = library.submit([roll])
        assert library.wait(session, timeout=120), library.report(session)["counts"]
        report = library.report(session)
        check_live_photo(report, roll)
        assert LiveClip.select().count() == 1
        library.remove_session(session.id)  # the clip's record goes with its document; the files stay
        assert LiveClip.select().count() == 0 and (roll / "IMG_0001.MOV").exists()


def check_live_photo(report, roll):
    """What status --json says of a camera roll with a Live Photo and a lone clip, AVIF asked for."""
    docs = {Path(d["path"]).name: d for d in report["documents"]}
    assert sorted(docs) == ["IMG_0001.HEIC", "IMG_0002.MOV"]
    assert report["skipped_files"] == []

    live = docs["IMG_0001.HEIC"]
    assert live["kind"] == "image" and live["status"] == "complete"
    assert live["live_photo"]["clip"] == str(roll / "IMG_0001.MOV")
    assert live["live_photo"]["size"] == (roll / "IMG_0001.MOV").stat().st_size
    assert live["live_photo"]["duration"] == pytest.approx(3.0, abs=0.1)

    video = docs["IMG_0002.MOV"]
    assert video["kind"] == "video" and "live_photo" not in video
    assert video["jobs"]["thumbnail"]["result"]["video"]["duration"] == pytest.approx(2.0, abs=0.15)

    # Every size as WebP (what the window shows) and, asked for, as AVIF beside it.
    for doc in docs.values():
        sizes = doc["jobs"]["thumbnail"]["result"]["thumbnails"]
        assert set(sizes) == {"sm", "md", "lg"}
        for name, info in sizes.items():
            assert Path(info["avif"]["path"]).parent == Path(info["path"]).parent
            with Image.open(info["path"]) as webp, Image.open(info["avif"]["path"]) as avif:
                assert (webp.format, avif.format) == ("WEBP", "AVIF")
                assert webp.size == avif.size == (info["width"], info["height"])
            assert os.path.getsize(info["avif"]["path"]) == info["avif"]["bytes"]


@pytest.mark.jobs("thumbnail")
def test_thumbnails_are_webp_only_unless_avif_is_asked_for(library, start_worker, tmp_path):
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(640, 480))
    start_worker()
    session, _ = library.submit([tmp_path / "photo.jpg"])
    assert library.wait(session, timeout=60)
    [doc] = library.report(session)["documents"]
    sizes = doc["jobs"]["thumbnail"]["result"]["thumbnails"]
    assert all("avif" not in info for info in sizes.values())
    assert sorted(os.listdir(Path(sizes["sm"]["path"]).parent)) == ["lg.webp", "md.webp", "sm.webp"]


def test_a_variant_format_setting_that_cannot_work_is_a_clear_error(tmp_path, cli_env):
    with pytest.raises(ConfigError, match=r"SNAPDESK_VARIANT_FORMATS='webp,jpeg' names 'jpeg': thumbnails are "
                                          r"written as webp or avif"):
        load_settings(env={"SNAPDESK_VARIANT_FORMATS": "webp,jpeg"})
    assert load_settings(env={"SNAPDESK_VARIANT_FORMATS": "AVIF, webp"}).variant_format_list == ("webp", "avif")
    out = snapdesk("status", env={**cli_env, "SNAPDESK_VARIANT_FORMATS": "avif"})
    assert out.returncode == 2
    assert "SNAPDESK_VARIANT_FORMATS='avif' leaves out webp" in out.stderr and "Traceback" not in out.stderr


def test_the_cli_imports_a_camera_roll_with_live_photos_places_and_avif(tmp_path, cli_env):
    roll = tmp_path / "roll"
    roll.mkdir()
    (roll / "IMG_0001.HEIC").write_bytes(saved(picture(), "HEIF"))
    (roll / "IMG_0001.MOV").write_bytes(tagged_clip(APPLE_TAGS, seconds=2.0))
    (roll / "IMG_0002.JPG").write_bytes(placed_jpeg(iptc=iptc_segment(city="Reykjavík", country="Iceland")))
    env = {**cli_env, "SNAPDESK_VARIANT_FORMATS": "webp,avif"}
    done = snapdesk("submit", str(roll), "--wait", "--json", env=env)
    assert done.returncode == 0, done.stderr
    status = json.loads(snapdesk("status", "--json", env=env).stdout)
    docs = {os.path.basename(d["path"]): d for d in status["documents"]}
    assert sorted(docs) == ["IMG_0001.HEIC", "IMG_0002.JPG"]
    assert docs["IMG_0001.HEIC"]["live_photo"]["clip"] == str(roll / "IMG_0001.MOV")
    assert docs["IMG_0001.HEIC"]["live_photo"]["duration"] == pytest.approx(2.0, abs=0.1)
    assert docs["IMG_0002.JPG"]["metadata"]["place_name"] == "Reykjavík, Iceland"
    lg = docs["IMG_0002.JPG"]["jobs"]["thumbnail"]["result"]["thumbnails"]["lg"]
    with Image.open(lg["avif"]["path"]) as avif:
        assert avif.format == "AVIF" and avif.size == (lg["width"], lg["height"])

    found = json.loads(snapdesk("search", "reykjavík", "--json", env=env).stdout)["results"]
    assert [os.path.basename(r["path"]) for r in found] == ["IMG_0002.JPG"]
