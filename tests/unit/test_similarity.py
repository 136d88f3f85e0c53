"""Duplicates: which pictures are the same picture (processors/similarity.py, engine/duplicates.py).

Photos come from benchmarks/duplicates.py (``shoot``: a scene, shot as a camera takes it) with
seeds the thresholds were not tuned on (they were tuned on 0-39); each goes through the thumbnail
job's own code, as in the library.
"""

from __future__ import annotations

import random
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


def _planted(seed: int, pictures: int = 3000) -> tuple[list[int], list[int]]:
    """Perceptual hashes with groups planted in them (copies a few bits from their original) and
    collisions (near hashes of other pictures); and which picture each hash is of."""
    rng = random.Random(seed)
    hashes, picture = [], []
    for n in range(pictures):
        if hashes and rng.random() < 0.3:
            k = rng.randrange(len(hashes))
            flips = sum(1 << rng.randrange(64) for _ in range(rng.randrange(12)))
            hashes.append(similarity.signed64(hashes[k] ^ flips))
            picture.append(picture[k] if rng.random() < 0.8 else n)  # a copy, or a collision
        else:
            hashes.append(similarity.signed64(rng.getrandbits(64)))
            picture.append(n)
    return hashes, picture


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_pictures_added_a_few_at_a_time_are_grouped_as_all_at_once(seed, monkeypatch):
    """The window asks again as a drop's thumbnails complete: a grouping kept between its questions
    compares only the new pictures, and finds what comparing every pair finds. (Signatures here
    name their picture: which pair is the same picture is given, the grouping is what is tested.)"""
    monkeypatch.setattr(similarity, "same_picture", lambda a, b: a == b)
    hashes, picture = _planted(seed)
    signature = lambda i: picture[i].to_bytes(4, "big")  # noqa: E731
    everything = {frozenset(g) for g in similarity.group(hashes, signature)}
    of_picture: dict[int, list[int]] = {}
    for i, p in enumerate(picture):
        of_picture.setdefault(p, []).append(i)
    pairs = [(i, j) for members in of_picture.values() for n, i in enumerate(members) for j in members[n + 1:]
             if similarity.hash_distance(hashes[i], hashes[j]) <= similarity.HASH_DISTANCE]  # by hand
    assert len(everything) > 100 and all(any(i in g and j in g for g in everything) for i, j in pairs)

    rng = random.Random(seed)
    order = list(range(len(hashes)))
    rng.shuffle(order)  # a picture's likeness may come before an older one's
    grouping: similarity.Grouping[int] = similarity.Grouping()
    asked: list[int] = []
    while order:
        size = rng.randrange(1, 400)
        step, order = order[:size], order[size:]
        before = set(grouping.hashes)
        grouping.add([(i, hashes[i]) for i in step], lambda i: asked.append(i) or signature(i))
        assert {frozenset(g) for g in grouping.groups()} == {frozenset(g) for g in _components(pairs, set(grouping.hashes))}
        assert all(i in step or any(similarity.hash_distance(hashes[i], hashes[j]) <= similarity.HASH_DISTANCE
                                    for j in step) for i in asked if i in before)  # old ones only beside new ones
        asked.clear()
    assert {frozenset(g) for g in grouping.groups()} == everything


def _components(pairs: list[tuple[int, int]], present: set[int]) -> list[set[int]]:
    """The groups of two or more that the pairs among ``present`` join."""
    parent = {i: i for i in present}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in pairs:
        if i in present and j in present:
            parent[root(i)] = root(j)
    groups: dict[int, set[int]] = {}
    for i in present:
        groups.setdefault(root(i), set()).add(i)
    return [g for g in groups.values() if len(g) > 1]


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


def test_what_the_library_found_before_is_kept_and_follows_what_comes_and_goes(library, transport, tmp_path, scene,
                                                                             original):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    (first / "a.jpg").write_bytes(original)
    (first / "b.webp").write_bytes(photos.encode(scene.resize((W // 2, H // 2)), "WEBP", 60))
    (second / "c.jpg").write_bytes(photos.encode(scene.resize((W // 3, H // 3)), "JPEG", 70))
    (second / "d.jpg").write_bytes(photos.encode(photos.shoot(SEED + 7, width=W, height=H)))
    one, _ = library.submit([first])
    work(library, transport)
    assert [[Path(p.path).name for p in g.pictures] for g in library.duplicates()] == [["a.jpg", "b.webp"]]
    two, _ = library.submit([second])
    work(library, transport)
    assert [[Path(p.path).name for p in g.pictures] for g in library.duplicates()] == [["a.jpg", "b.webp", "c.jpg"]]
    library.remove_session(one.id)
    assert library.duplicates() == []  # c.jpg's original and copy are gone: nothing to group it with
    assert library.duplicates(two.id) == []


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
