"""Duplicates through the whole engine: real workers on both transports, and `snapdesk duplicates`.

Photos come from benchmarks/duplicates.py (a scene shot as a camera takes it), with seeds the
thresholds were not tuned on.
"""

import json
import sys
from pathlib import Path

from helpers import snapdesk

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import duplicates as photos  # noqa: E402  (benchmarks/duplicates.py)

W, H = 1200, 900


def holiday(folder: Path) -> Path:
    """An original, a smaller re-encoded copy, a shot a second later (the camera moved), another photo."""
    folder.mkdir(parents=True)
    scene = photos.shoot(2004, width=W, height=H)
    (folder / "IMG_0201.jpg").write_bytes(photos.encode(scene, "JPEG", 92))
    (folder / "IMG_0201 small.jpg").write_bytes(photos.encode(scene.resize((W // 2, H // 2)), "JPEG", 60))
    later = photos.shoot(2004, photos.Shot(shift=(-0.03, 0.02), noise_seed=1), width=W, height=H)
    (folder / "IMG_0202.jpg").write_bytes(photos.encode(later, "JPEG", 92))
    (folder / "IMG_0300.jpg").write_bytes(photos.encode(photos.shoot(2005, width=W, height=H), "JPEG", 92))
    return folder


def test_a_resized_copy_is_grouped_under_its_original_on_either_transport(library, start_worker, tmp_path):
    start_worker()
    session, _ = library.submit([holiday(tmp_path / "holiday")])
    assert library.wait(session, timeout=120), library.report(session)["counts"]

    [group] = library.duplicates(session.id)
    assert Path(group.original.path).name == "IMG_0201.jpg"
    assert [Path(c.path).name for c in group.copies] == ["IMG_0201 small.jpg"]
    assert (group.copies[0].width, group.copies[0].height) == (W // 2, H // 2)


def test_snapdesk_duplicates_prints_each_group_with_its_original_first(tmp_path, cli_env):
    submitted = snapdesk("submit", str(holiday(tmp_path / "holiday")), "--wait", env=cli_env)
    assert submitted.returncode == 0, submitted.stderr

    listed = snapdesk("duplicates", "--json", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    [group] = json.loads(listed.stdout)["groups"]
    assert group["original"]["name"] == "IMG_0201.jpg"
    assert (group["original"]["width"], group["original"]["height"]) == (W, H)
    assert [c["name"] for c in group["copies"]] == ["IMG_0201 small.jpg"]

    human = snapdesk("duplicates", "--session", "1", env=cli_env)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0] == "2 files of one picture:"
    assert lines[1].split()[0] == "original" and "IMG_0201.jpg  (1200 x 900, " in lines[1]
    assert lines[2].split()[0] == "copy" and "IMG_0201 small.jpg  (600 x 450, " in lines[2]
    assert len(lines) == 3

    missing = snapdesk("duplicates", "--session", "7", env=cli_env)
    assert missing.returncode == 2 and "no session 7" in missing.stderr
