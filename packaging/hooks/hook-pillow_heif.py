"""PyInstaller hook for pillow-heif, which the community hooks do not cover.

Its compiled part is a top-level module, ``_pillow_heif``, imported inside a try block (a missing
one only shows when the first HEIC is opened, as "No module named _pillow_heif"); libheif,
libde265 and x265 come with it from ``pillow_heif.libs`` through the binary analysis. SnapDesk
imports pillow_heif inside ``processors/decode.py``'s functions, which the analysis still sees.
av (PyAV, with FFmpeg in ``av.libs``) and rawpy (LibRaw) have hooks in pyinstaller-hooks-contrib
(hook-av.py, hook-rawpy.py). ``packaging/smoke.py`` checks all three libraries are in the bundle,
and the self-test decodes a HEIC and a video with them.
"""

from PyInstaller.utils.hooks import collect_submodules

hiddenimports = ["_pillow_heif", *collect_submodules("pillow_heif")]
