"""The layout of the PyInstaller bundle, declared once: snapdesk.spec builds it, and
installer.iss, the smoke test and tests/integration/test_packaging.py check against it.

    dist/SnapDesk/
        snapdesk(.exe)            the window (and the command line), no console on Windows
        snapdesk-worker(.exe)     the headless worker, a console program
        _internal/                Python, Qt, onnxruntime, PDFium, ... and the data below

Plain Python with no imports beyond the standard library, so a test can read it without
PyInstaller.
"""

from __future__ import annotations

APP_NAME = "SnapDesk"
BUNDLE_DIR = "SnapDesk"  # under dist/
CONTENTS_DIR = "_internal"  # PyInstaller's contents directory (its default since 6.0)

#: name -> True when the executable has a console. local_workers.worker_command() expects the
#: worker under exactly this name beside the app's executable.
EXECUTABLES = {"snapdesk": False, "snapdesk-worker": True}

#: Data the app finds at run time, relative to the contents directory.
DATA_FILES = (
    "snapdesk/VERSION",  # the package's version, written by the spec; installer.iss reads it
    "snapdesk/resources/snapdesk.ico",
    "snapdesk/resources/snapdesk.png",
    "snapdesk/resources/snapdesk.svg",
    "snapdesk/resources/selftest.png",
    "snapdesk/resources/selftest.pdf",
    "snapdesk/resources/selftest.heic",  # the self-test's HEIC (libheif) and video (FFmpeg)
    "snapdesk/resources/selftest.mp4",
    "snapdesk/resources/ocr_det_tiny.onnx",  # the OCR job's models (resources/fetch_ocr_models.py)
    "snapdesk/resources/ocr_rec_tiny.onnx",
    "snapdesk/resources/ocr_rec_int8.onnx",  # SNAPDESK_OCR_MODEL=int8's recogniser (resources/quantize_ocr.py)
    "snapdesk/store/migrations/0001_initial.py",  # read as files by the library DB's migration runner
    "rapidocr_onnxruntime/config.yaml",
    "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
    "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
    "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
)

#: Name fragments of shared libraries the bundle must carry: the OCR model's runtime, PDFium, and the
#: decoders of HEIC (libheif, pillow-heif), video (FFmpeg, PyAV) and camera RAW (LibRaw, rawpy).
SHARED_LIBRARIES = ("onnxruntime", "pdfium", "libheif", "avcodec", "libraw")

#: Qt modules the app imports (QtCore, QtGui, QtWidgets; QtDBus for the taskbar progress on Linux)
#: stay; these are left out, with their libraries and plugins. Anything here that the app starts importing must come off the list.
EXCLUDED_QT = (
    "Qt3DAnimation", "Qt3DCore", "Qt3DExtras", "Qt3DInput", "Qt3DLogic", "Qt3DRender",
    "QtAxContainer", "QtBluetooth", "QtCharts", "QtConcurrent", "QtDataVisualization",
    "QtDesigner", "QtGraphs", "QtGraphsWidgets", "QtHelp", "QtHttpServer", "QtLocation",
    "QtMultimedia", "QtMultimediaWidgets", "QtNetwork", "QtNetworkAuth", "QtNfc", "QtOpenGL",
    "QtOpenGLWidgets", "QtPdf", "QtPdfWidgets", "QtPositioning", "QtPrintSupport", "QtQml", "QtQuick",
    "QtQuick3D", "QtQuickControls2", "QtQuickTest", "QtQuickWidgets", "QtRemoteObjects", "QtScxml",
    "QtSensors", "QtSerialBus", "QtSerialPort", "QtSpatialAudio", "QtSql", "QtStateMachine", "QtSvg",
    "QtSvgWidgets", "QtTest", "QtTextToSpeech", "QtUiTools", "QtWebChannel", "QtWebEngineCore",
    "QtWebEngineQuick", "QtWebEngineWidgets", "QtWebSockets", "QtWebView", "QtXml",
)

#: Qt plugins left out (by name, without "lib" and extension), and whole plugin folders: input
#: for embedded devices and framebuffers, the virtual keyboard (QtQuick), the PDF image format
#: (QtPdf), and the GTK theme (the host's GTK). xcb, wayland, offscreen, the image formats
#: (WebP, JPEG, TIFF...) and the desktop portal theme stay.
UNUSED_QT_PLUGINS = ("qtvirtualkeyboardplugin", "qpdf", "qeglfs", "qlinuxfb", "qminimalegl", "qvkkhrdisplay", "qvnc",
                     "qgtk3")
UNUSED_QT_PLUGIN_TYPES = ("egldeviceintegrations", "generic")

#: Shared libraries that must not be in the bundle (name fragments): what the exclusions above
#: are meant to keep out.
FORBIDDEN_LIBRARIES = ("Qt6WebEngine", "Qt63D", "Qt6Quick", "Qt6Qml", "Qt6Multimedia", "Qt6Pdf",
                       "Qt6Charts", "Qt6Designer", "Qt6VirtualKeyboard", "libgtk", "libatk")


def executable(name: str, windows: bool) -> str:
    return name + (".exe" if windows else "")


def expected_files(windows: bool) -> list[str]:
    """Every file the bundle must have, relative to dist/SnapDesk, with "/" separators."""
    return ([executable(name, windows) for name in EXECUTABLES]
            + [f"{CONTENTS_DIR}/{path}" for path in DATA_FILES])
