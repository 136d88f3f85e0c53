"""Duplicates: which pictures are the same picture (processors/similarity.py, engine/duplicates.py).

Photos come from benchmarks/duplicates.py (``shoot``: a scene, shot as a camera takes it) with
seeds the thresholds were not tuned on (they were tuned on 0-39); each goes through the thumbnail
job's own code, as in the library.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from snapdesk.engine import duplicates
from snapdesk.processors import similarity
from snapdesk.processors.thumbnail import describe, make_thumbnails
from snapdesk.store.db import Likeness

from unit_helpers import work

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import duplicates as photos  # noqa: E402  (benchmarks/duplicates.py: generated scenes)

SEED = 2001  # not a tuning seed
W, H = 1200, 900


def likeness(data: bytes) -> similarity.Likeness:
    made = make_thumbnails(data)
    assert made.likeness is not None
    return made.likeness


def same(a: bytes, b: bytes) -> bool:
    la, lb = likeness(a), likeness(b)
    return similarity.hash_distance(la.phash, lb.phash) <= similarity.HASH_DISTANCE and \
        similarity.same_picture(la.signature, lb.signature)


@pytest.fixture(scope="module")
def scene():
    return photos.shoot(SEED, width=W, height=H)


@pytest.fixture(scope="module")
def original(scene):
    return photos.encode(scene, "JPEG", 92)


def test_a_resized_and_re_encoded_copy_is_the_same_picture(scene, original):
    small = scene.resize((W * 2 // 5, H * 2 // 5))
    assert same(original, photos.encode(small, "JPEG", 45))
    assert same(original, photos.encode(small, "WEBP", 60))
    assert same(original, photos.encode(scene, "PNG"))


def test_a_slightly_cropped_copy_is_the_same_picture(scene, original):
    cropped = scene.crop((round(W * 0.03), round(H * 0.01), W - round(W * 0.02), H - round(H * 0.035)))
    assert same(original, photos.encode(cropped.resize((cropped.width // 2, cropped.height // 2)), "JPEG", 70))


def test_a_copy_stored_turned_with_its_exif_orientation_is_the_same_picture(scene, original):
    for orientation in (3, 6, 8):
        assert same(original, photos.encode(scene, "JPEG", 80, orientation=orientation)), orientation


@pytest.mark.parametrize("shot", [
    photos.Shot(shift=(0.04, 0.0), noise_seed=1),
    photos.Shot(shift=(0.0, -0.03), noise_seed=1),
    photos.Shot(subject=(0.06, 0.02), noise_seed=1),
    photos.Shot(exposure=0.4, noise_seed=1),
    photos.Shot(exposure=-0.4, noise_seed=1),
], ids=["camera moved right", "camera moved up", "subject moved", "brighter", "darker"])
def test_the_same_scene_shot_a_second_later_is_another_photo(original, shot):
    assert not same(original, photos.encode(photos.shoot(SEED, shot, width=W, height=H), "JPEG", 92))


def test_a_subject_as_bright_as_what_is_behind_it_that_moved_is_told_apart_by_its_colour():
    # Seed 1034: the scene where the grey signature alone grouped the two shots (docs/DUPLICATES.md).
    still = photos.encode(photos.shoot(1034, width=W, height=H))
    moved = photos.encode(photos.shoot(1034, photos.Shot(subject=(0.05, 0.0), noise_seed=1), width=W, height=H))
    diff = similarity.difference(likeness(still).signature, likeness(moved).signature)
    assert diff.block <= similarity.BLOCK_TOLERANCE  # in grey, nearly nothing moved
    assert not same(still, moved)


def test_two_different_photos_are_not_the_same_picture(original):
    assert not same(original, photos.encode(photos.shoot(SEED + 1, width=W, height=H)))


def test_a_likeness_travels_in_the_thumbnail_result_as_json_and_back(original):
    made = make_thumbnails(original)
    sent = describe(made)["likeness"]
    assert similarity.Likeness.from_json(sent) == made.likeness
    with pytest.raises(ValueError, match="a signature has 6144 bytes"):
        similarity.Likeness.from_json({**sent, "signature": "AAAA"})


def test_grouping_asks_only_candidates_for_their_signatures():
    far = [0, -1, 0x0F0F_0F0F_0F0F_0F0F, 0x3333_3333_3333_3333]  # every pair more than 16 bits apart
    asked = []
    assert similarity.group(far, lambda i: asked.append(i) or b"") == []
    assert asked == []


# -- in the library ---------------------------------------------------------------------------
def test_the_library_groups_a_copy_with_its_original_first_and_not_a_shot_a_second_later(
        library, transport, tmp_path, scene, original):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "IMG_0001.jpg").write_bytes(original)
    (folder / "IMG_0001 (small).webp").write_bytes(photos.encode(scene.resize((W // 3, H // 3)), "WEBP", 60))
    (folder / "IMG_0002.jpg").write_bytes(photos.encode(photos.shoot(SEED, photos.Shot(shift=(0.05, 0.01)),
                                                                     width=W, height=H)))
    (folder / "IMG_0003.jpg").write_bytes(photos.encode(photos.shoot(SEED + 7, width=W, height=H)))
    session, _ = library.submit([folder])
    work(library, transport)

    [group] = library.duplicates(session.id)
    assert Path(group.original.path).name == "IMG_0001.jpg"
    assert (group.original.width, group.original.height) == (W, H)
    assert [Path(c.path).name for c in group.copies] == ["IMG_0001 (small).webp"]
    assert library.duplicates() == [group]  # the whole library: the same
    assert group.to_json()["original"]["name"] == "IMG_0001.jpg"
    thumbnail = library.report(session)["documents"][0]["jobs"]["thumbnail"]["result"]
    assert "likeness" not in thumbnail  # its table holds it, not the job's result


def test_the_same_files_added_again_in_another_session_reuse_their_likeness_and_are_one_picture(
        library, transport, tmp_path, scene, original):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(original)
    (folder / "b.jpg").write_bytes(photos.encode(scene.resize((W // 2, H // 2)), "JPEG", 50))
    first, _ = library.submit([folder])
    work(library, transport)
    again, _ = library.submit([folder])
    work(library, transport)

    [in_again] = library.duplicates(again.id)
    assert {c.session_id for c in in_again.pictures} == {again.id}
    [in_library] = library.duplicates()  # one group: each content once, as its first document
    assert {p.session_id for p in in_library.pictures} == {first.id}

    library.remove_session(first.id)
    library.remove_session(again.id)
    assert Likeness.select().count() == 0  # no document has that content any more


def test_pictures_without_a_likeness_are_in_no_group(library, transport, tmp_path, scene, original):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(original)
    (folder / "b.jpg").write_bytes(photos.encode(scene, "WEBP", 70))
    session, _ = library.submit([folder])
    work(library, transport)
    assert len(library.duplicates(session.id)) == 1
    Likeness.delete().execute()  # as for pictures thumbnailed before the likeness existed
    assert library.duplicates(session.id) == []
    assert duplicates.grouped_ids([]) == set()
