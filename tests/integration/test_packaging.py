"""Packaging: the wheel, the self-test, the bundle's declared layout, installer.iss, the desktop entry.

Quick enough for the default suite (about 15 s, most of it building and installing the wheel).
The PyInstaller build itself takes minutes and is `make smoke`; where a bundle already exists
under dist/, installer.iss and the layout are checked against it too.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import snapdesk

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))

import layout  # noqa: E402

BUNDLE = ROOT / "dist" / layout.BUNDLE_DIR
RESOURCES = ROOT / "src" / "snapdesk" / "resources"
ISS = ROOT / "installer.iss"


def _bundle_files() -> set[str] | None:
    """The files of a bundle built under dist/ ("/"-separated, relative), or None when there is none."""
    if not (BUNDLE / layout.CONTENTS_DIR).is_dir():
        return None
    return {p.relative_to(BUNDLE).as_posix() for p in BUNDLE.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------- resources and self-test
def test_resources_are_package_data():
    names = {p.split("/", 2)[2] for p in layout.DATA_FILES if p.startswith("snapdesk/resources/")}
    assert names <= {p.name for p in RESOURCES.iterdir()}, "resources/make_resources.py writes these"
    # resources/fetch_ocr_models.py and resources/quantize_ocr.py write the OCR models
    models = {"ocr_det_tiny.onnx", "ocr_rec_tiny.onnx", "ocr_rec_int8.onnx"}
    assert models <= names and all((RESOURCES / model).stat().st_size < 8 * 2**20 for model in models)
    assert all((RESOURCES / n).stat().st_size < 64_000 for n in names - models)  # small
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as fh:
        package_data = tomllib.load(fh)["tool"]["setuptools"]["package-data"]["snapdesk"]
    assert "resources/*" in package_data


def test_self_test_passes_with_the_network_off():
    proc = subprocess.run([sys.executable, "-m", "snapdesk.worker", "--self-test"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith("self-test, network blocked")
    assert [ln.split()[:2] for ln in lines[1:7]] == [["ok", "thumbnail"], ["ok", "ocr"], ["ok", "pdf"], ["ok", "heic"],
                                                     ["ok", "video"], ["ok", "raw"]]
    assert "SNAPDESK SELF" in proc.stdout and "14.58" in proc.stdout
    assert "selftest.heic 240x320 upright" in proc.stdout and "'codec': 'h264'" in proc.stdout
    assert lines[-1] == "self-test passed"


def test_the_self_test_blocks_the_network_and_says_so():
    import socket

    from snapdesk import selftest

    with selftest.network_blocked() as attempts:
        with pytest.raises(selftest.NetworkBlocked):
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        with pytest.raises(selftest.NetworkBlocked):
            socket.getaddrinfo("pypi.org", 443)
    assert attempts == ["127.0.0.1", "pypi.org"]
    with socket.socket() as s:  # restored afterwards
        s.bind(("127.0.0.1", 0))


def test_a_failed_check_fails_the_self_test(monkeypatch, capsys):
    from snapdesk import selftest

    monkeypatch.setattr(selftest, "EXPECTED_LINES", ("words the sample does not have",))
    monkeypatch.setattr(selftest, "CHECKS", tuple(c for c in selftest.CHECKS if c[0] == "ocr"))
    assert selftest.run() == 1
    out = capsys.readouterr().out
    assert "FAIL ocr" in out and "did not read 'words the sample does not have'" in out
    assert out.rstrip().endswith("self-test FAILED: ocr")


# ---------------------------------------------------------------------- the wheel
def test_the_wheel_installs_into_a_fresh_venv_and_both_commands_run(tmp_path):
    """Build the wheel from a copy of the sources, install it (without dependencies) into a new
    venv that borrows this venv's packages through a .pth file, and run both commands there."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), str(src)], check=True, timeout=120, capture_output=True)
    (wheel,) = wheels.glob(f"snapdesk-{snapdesk.__version__}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = zf.read(f"snapdesk-{snapdesk.__version__}.dist-info/entry_points.txt").decode()
    for path in layout.DATA_FILES:
        if path.startswith("snapdesk/resources/"):
            assert path in names
    assert "snapdesk/store/migrations/0001_initial.py" in names
    assert "snapdesk = snapdesk.cli:main" in entry_points and "snapdesk-worker = snapdesk.worker.main:main" in entry_points

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    python = bin_dir / ("python.exe" if sys.platform == "win32" else "python")
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies come from this venv, after the new venv's own packages (and no .pth of
    # this venv is read, so its editable snapdesk stays out of sight).
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, timeout=120, capture_output=True)

    where = subprocess.run([python, "-c", "import snapdesk; print(snapdesk.__file__)"], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(site)
    for command in ("snapdesk", "snapdesk-worker"):
        proc = subprocess.run([bin_dir / command, "--version"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"{command} {snapdesk.__version__}"
    proc = subprocess.run([bin_dir / "snapdesk-worker", "--self-test"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "selftest.png 560x200" in proc.stdout  # the sample came from the installed wheel


# ---------------------------------------------------------------------- the PyInstaller spec and bundle
def test_the_spec_builds_the_declared_layout():
    spec = (ROOT / "packaging" / "snapdesk.spec").read_text()
    for name in layout.EXECUTABLES:
        assert f'executable(app, "{name}")' in spec or f'executable(worker, "{name}")' in spec
    assert layout.EXECUTABLES == {"snapdesk": False, "snapdesk-worker": True}  # the window has no console
    assert "contents_directory=layout.CONTENTS_DIR" in spec and "name=layout.BUNDLE_DIR" in spec
    assert '(VERSION_FILE, "snapdesk")' in spec and "snapdesk/VERSION" in layout.DATA_FILES
    from snapdesk.engine import local_workers  # the app looks for the worker under this name

    assert '"snapdesk-worker"' in Path(local_workers.__file__).read_text()


def test_the_rapidocr_hook_collects_the_models_and_config():
    pytest.importorskip("PyInstaller", reason="PyInstaller is in the `build` extra (make bundle installs it)")
    import runpy

    hook = runpy.run_path(str(ROOT / "packaging" / "hooks" / "hook-rapidocr_onnxruntime.py"))
    collected = {Path(dest, Path(src).name).as_posix() for src, dest in hook["datas"]}
    wanted = {p for p in layout.DATA_FILES if p.startswith("rapidocr_onnxruntime/")}
    assert wanted <= collected
    from snapdesk.processors.ocr import _model_dir  # where the app looks: beside rapidocr's modules

    assert _model_dir().as_posix().endswith("rapidocr_onnxruntime/models")


def test_the_pillow_heif_hook_brings_its_compiled_part():
    pytest.importorskip("PyInstaller", reason="PyInstaller is in the `build` extra (make bundle installs it)")
    import runpy

    hook = runpy.run_path(str(ROOT / "packaging" / "hooks" / "hook-pillow_heif.py"))
    assert "_pillow_heif" in hook["hiddenimports"]  # a top-level module pillow_heif imports in a try block


@pytest.mark.skipif(_bundle_files() is None, reason="no bundle under dist/ (make bundle)")
def test_the_built_bundle_has_the_declared_layout():
    files = _bundle_files()
    windows = "snapdesk.exe" in files
    missing = [f for f in layout.expected_files(windows) if f not in files]
    assert not missing
    assert (BUNDLE / layout.CONTENTS_DIR / "snapdesk" / "VERSION").read_text().strip() == snapdesk.__version__, \
        "the bundle is older than the package: make bundle"
    forbidden = [f for f in files if any(lib in f.rsplit("/", 1)[-1] for lib in layout.FORBIDDEN_LIBRARIES)]
    assert not forbidden
    names = [f.rsplit("/", 1)[-1] for f in files]
    for lib in layout.SHARED_LIBRARIES:  # onnxruntime, PDFium, libheif, FFmpeg, LibRaw
        assert any(lib in n and (".so" in n or n.endswith((".dll", ".dylib"))) for n in names), lib


# ---------------------------------------------------------------------- installer.iss
def _iss() -> tuple[str, dict[str, str]]:
    """installer.iss with its simple string #defines ({#Name}) substituted, and those defines."""
    text = ISS.read_text(encoding="utf-8")
    defines = dict(re.findall(r'^#define (\w+) "([^"]*)"$', text, re.M))
    for name, value in defines.items():
        text = text.replace("{#" + name + "}", value)
    return text, defines


def _sections(text: str) -> dict[str, list[str]]:
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if re.fullmatch(r"\[\w+\]", line):
            current = sections.setdefault(line[1:-1], [])
        elif current is not None and line and not line.startswith(";"):
            current.append(line)
    return sections


def _bundle_names() -> tuple[set[str], str]:
    """The files installer.iss may name in the bundle: a built one's when there is one (a Linux
    build's executables have no .exe), else the layout the spec declares."""
    built = _bundle_files()
    if built is None:
        return set(layout.expected_files(windows=True)), "the declared layout"
    if "snapdesk.exe" not in built:
        built |= {layout.executable(n, True) for n in layout.EXECUTABLES if n in built}
    return built, f"the bundle in {BUNDLE}"


@pytest.mark.parametrize("against", ["a built bundle if any", "the declared layout"])
def test_installer_names_only_files_the_bundle_has(against, monkeypatch):
    if against == "the declared layout":
        monkeypatch.setattr(sys.modules[__name__], "_bundle_files", lambda: None)
    text, defines = _iss()
    bundle_prefix = defines["Bundle"].replace("\\", "/") + "/"
    assert bundle_prefix == f"dist/{layout.BUNDLE_DIR}/"
    files, against = _bundle_names()
    dirs = {f.rsplit("/", i)[0] for f in files for i in range(1, f.count("/") + 1)}
    sections = _sections(text)

    named = []  # (what installer.iss says, the path in the bundle)
    for line in sections["Files"]:
        source = re.search(r'Source: "([^"]+)"', line).group(1).replace("\\", "/")
        assert source.startswith(bundle_prefix), line
        named.append((source, source[len(bundle_prefix):]))
    app_refs = re.findall(r"\{app\}\\([^\"',;\s]+)", text)
    named += [("{app}\\" + ref, ref.replace("\\", "/")) for ref in app_refs]
    version_file = re.search(r'Bundle \+ "\\([^"]+)"', text).group(1).replace("\\", "/")
    named.append((version_file, version_file))

    for said, path in named:
        if path.endswith("/*"):
            assert path[:-2] in dirs, f"installer.iss names {said}, a folder not in {against}"
        else:
            assert path in files or path in dirs, f"installer.iss names {said}, which is not in {against}"
    assert {p for _, p in named} >= {"snapdesk.exe", "snapdesk-worker.exe", f"{layout.CONTENTS_DIR}/snapdesk/VERSION"}
    icon = re.search(r"^SetupIconFile=(.+)$", text, re.M).group(1).replace("\\", "/")
    assert (ROOT / icon).is_file()


def test_installer_version_and_upgrade_rules():
    text, defines = _iss()
    # The version is the package's, read from the bundle's VERSION file (or given with /DAppVersion).
    assert "#ifndef AppVersion" in text and "FileRead(VersionFile)" in text
    assert "_internal\\snapdesk\\VERSION" in text.replace("{#Bundle}", "")
    built = BUNDLE / layout.CONTENTS_DIR / "snapdesk" / "VERSION"
    if built.is_file():
        assert built.read_text().strip() == snapdesk.__version__
    assert "AppVersion" not in defines  # no version written into the file by hand
    setup = dict(line.split("=", 1) for line in _sections(text)["Setup"])
    assert re.fullmatch(r"\{\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}", setup["AppId"])
    assert setup["AppVersion"] == "{#AppVersion}" and setup["CloseApplications"] == "force"
    # Running instances are stopped, old library folders removed, the desktop icon optional.
    assert "function PrepareToInstall" in text and "StopSnapDesk" in text
    assert any("{app}\\_internal" in line for line in _sections(text)["InstallDelete"])
    assert any("desktopicon" in line and "unchecked" in line for line in _sections(text)["Tasks"])
    assert any("{autodesktop}" in line and "Tasks: desktopicon" in line for line in _sections(text)["Icons"])
    assert any("{group}" in line for line in _sections(text)["Icons"])
    # Explorer: "Process with SnapDesk" on folders, removed with the app.
    registry = _sections(text)["Registry"]
    assert any("Directory\\shell\\SnapDesk" in line and "Process with SnapDesk" in line and "uninsdeletekey" in line
               for line in registry)
    assert any('""%1""' in line for line in registry if "Directory\\shell\\SnapDesk\\command" in line)
    # Uninstall asks (default: no) before deleting the user's library.
    assert "usPostUninstall" in text and "MB_YESNO or MB_DEFBUTTON2" in text and "DelTree(Dir" in text


# ---------------------------------------------------------------------- Linux desktop entry
def test_the_desktop_entry():
    entry = configparser.ConfigParser(interpolation=None, strict=True)
    entry.optionxform = str
    entry.read(ROOT / "packaging" / "linux" / "snapdesk.desktop", encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Name"] == "SnapDesk"
    assert desktop["Icon"] == "snapdesk" and desktop["Exec"].endswith("%F")
    assert desktop["StartupWMClass"] == "snapdesk"  # gui/app.py: setDesktopFileName("snapdesk")
    from snapdesk.engine.jobs import KINDS

    mime = set(desktop["MimeType"].rstrip(";").split(";"))
    assert {"inode/directory", "application/pdf", "image/jpeg", "image/png"} <= mime
    assert len(mime) >= len(set(KINDS.values())) + 1


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_desktop_install(tmp_path):
    proc = subprocess.run(["make", "-s", "desktop-install", f"XDG_DATA_HOME={tmp_path}",
                           "SNAPDESK_BIN=/opt/Snap Desk/snapdesk"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    installed = tmp_path / "applications" / "snapdesk.desktop"
    assert 'Exec="/opt/Snap Desk/snapdesk" %F' in installed.read_text()
    assert (tmp_path / "icons" / "hicolor" / "256x256" / "apps" / "snapdesk.png").is_file()
    assert (tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "snapdesk.svg").is_file()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(installed)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout
