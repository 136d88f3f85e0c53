# SnapDesk: `make run` sets up and starts the app; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run gui-libs test test-unit typecheck soak bench redis-server clean
.PHONY: dist bundle smoke desktop-install

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV) with SnapDesk and its packages (a minute or two the first time)..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@# rapidocr pulls in opencv-python, whose bundled Qt clashes with PySide6: use the headless build.
	@# Forced: on a re-run, removing opencv-python also deletes files the headless build shares.
	$(PY) -m pip uninstall --quiet -y opencv-python
	$(PY) -m pip install --quiet --force-reinstall --no-deps opencv-python-headless
	touch $(STAMP)

setup: $(STAMP)

run: setup gui-libs
	$(VENV)/bin/snapdesk $(ARGS)

# Qt's X11 platform plugin needs these on Debian/Ubuntu, and the taskbar progress a D-Bus session
# bus (its test starts one); install the ones missing.
GUI_LIBS := libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xkb1 \
            libxkbcommon-x11-0 libxcb-shape0 libegl1 libgl1 libfontconfig1 dbus-daemon dbus-bin
gui-libs:
	@command -v dpkg >/dev/null 2>&1 || exit 0; \
	missing=$$(for p in $(GUI_LIBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	[ -z "$$missing" ] || { echo "installing Qt's X11 libraries: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; }

# The suite starts its own redis-server on a free port; install it when missing.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian/Ubuntu)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server; }

# The type checker first (strict on the engine, the store and the processors: [tool.mypy] in
# pyproject.toml), then the fast tier (tests/unit: no process, no redis-server, no Qt; seconds), then the rest.
test: setup redis-server gui-libs typecheck
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest tests/unit
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest --ignore=tests/unit $(PYTEST_ARGS)

test-unit: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest tests/unit $(PYTEST_ARGS)

typecheck: setup
	$(VENV)/bin/mypy

# The full soak: 1000 documents through three workers killed at random (the suite runs 150).
soak: setup redis-server
	SNAPDESK_SOAK_DOCS=1000 QT_QPA_PLATFORM=offscreen $(PY) -m pytest --timeout=0 -m soak tests/integration/test_reliability.py

bench: setup
	$(PY) benchmarks/thumbnails.py --engine
	$(PY) benchmarks/first_job.py

# ---- Packaging: wheel and sdist, the PyInstaller bundle and its smoke test, the Linux desktop entry.
BUILD_STAMP := $(VENV)/.build-tools
BUNDLE := dist/SnapDesk
XDG_DATA_HOME ?= $(HOME)/.local/share

# The `build` extra of pyproject.toml, installed by name: installing `.[build]` would bring back
# opencv-python (rapidocr's requirement), which `setup` swapped for the headless build.
$(BUILD_STAMP): $(STAMP)
	$(PY) -m pip install --quiet $$($(PY) -c 'import importlib.metadata as m; print(" ".join(r.split(";")[0] for r in m.requires("snapdesk") if "extra == \"build\"" in r))')
	touch $(BUILD_STAMP)

# dist/snapdesk-<version>.tar.gz and the wheel built from it.
dist: $(BUILD_STAMP)
	rm -f dist/snapdesk-*.whl dist/snapdesk-*.tar.gz
	$(PY) -m build --outdir dist .

# dist/SnapDesk/: snapdesk and snapdesk-worker in one folder (packaging/snapdesk.spec).
bundle: $(BUILD_STAMP)
	$(VENV)/bin/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/snapdesk.spec

smoke: bundle
	$(PY) packaging/smoke.py --bundle $(BUNDLE)

# SnapDesk in the desktop's menus and file manager (XDG): the bundle's snapdesk when built, else
# the venv's; SNAPDESK_BIN=/path/to/snapdesk chooses another.
desktop-install:
	@bin="$(SNAPDESK_BIN)"; \
	[ -n "$$bin" ] || { [ -x $(BUNDLE)/snapdesk ] && bin="$(CURDIR)/$(BUNDLE)/snapdesk" || bin="$(CURDIR)/$(VENV)/bin/snapdesk"; }; \
	install -d "$(XDG_DATA_HOME)/applications" "$(XDG_DATA_HOME)/icons/hicolor/256x256/apps" \
	  "$(XDG_DATA_HOME)/icons/hicolor/scalable/apps"; \
	sed "s|@SNAPDESK@|$$bin|g" packaging/linux/snapdesk.desktop > "$(XDG_DATA_HOME)/applications/snapdesk.desktop"; \
	install -m 644 src/snapdesk/resources/snapdesk.png "$(XDG_DATA_HOME)/icons/hicolor/256x256/apps/snapdesk.png"; \
	install -m 644 src/snapdesk/resources/snapdesk.svg "$(XDG_DATA_HOME)/icons/hicolor/scalable/apps/snapdesk.svg"; \
	command -v update-desktop-database >/dev/null && update-desktop-database -q "$(XDG_DATA_HOME)/applications" || true; \
	command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$(XDG_DATA_HOME)/icons/hicolor" || true; \
	echo "installed $(XDG_DATA_HOME)/applications/snapdesk.desktop (runs $$bin)"

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
