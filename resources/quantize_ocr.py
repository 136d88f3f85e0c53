"""Writes src/snapdesk/resources/ocr_rec_int8.onnx: rapidocr's PP-OCRv4 recognition model with its
convolutions quantised to int8 (static, calibrated), which the OCR job uses by default.

    .venv/bin/pip install -e '.[models]' && .venv/bin/python resources/quantize_ocr.py

Like make_resources.py, this script is the source and its output is committed: the app never
quantises anything at run time and needs no `onnx` package. It takes the fp32 model that
rapidocr-onnxruntime ships, converts it to opset 13 (per-channel quantisation needs it), and
quantises the Conv nodes only (QDQ, per channel, weights int8, activations uint8, min-max
calibration). The attention and the output layers stay fp32: quantising them too cost 2
points of accuracy for little speed. The calibration data are the text lines the OCR job cuts
from four pages rendered as benchmarks/ocr.py renders them, with other seeds than the
benchmark's own pages, in every font it uses, turned and speckled ones among them, and from
receipt-like lines (prices, dates, codes, mixed case) in the same fonts.

docs/OCR.md has what it bought: about a third less time a page at the same accuracy.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "src" / "snapdesk" / "resources" / "ocr_rec_int8.onnx"

#: Calibration pages: (seed, degrees turned, speckles); seeds the benchmark does not use.
CALIBRATION_PAGES = [(1001, 0.0, 0), (1002, 1.2, 0), (1003, 0.0, 3000), (1004, -0.8, 3000)]


def receipt_page(seed: int):
    """Lines of the kind receipts and invoices are made of, in the benchmark's fonts."""
    import random

    from ocr import font_paths, load_font
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    items = ["Oat milk 1 L", "Sourdough loaf", "Coffee beans 250g", "AA batteries x4", "Printer paper A4",
             "Tomatoes (loose)", "Parking, level -2", "Croissant", "Olive oil 0.75l", "Service charge 12.5%"]
    image = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(image)
    fonts = font_paths() or [None]
    y = 120
    while y < 2050:
        font = load_font(fonts[rng.randrange(len(fonts))], rng.choice([26, 30, 34, 40]))
        kind = rng.randrange(4)
        if kind == 0:
            text = f"{rng.choice(items)}    {rng.randint(0, 99)}.{rng.randint(0, 99):02d}"
        elif kind == 1:
            text = f"Invoice {rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}  No. " \
                   f"{rng.choice('ABCDEFGHKLMNPRSTVWXYZ')}{rng.randint(1000, 99999)}/{rng.choice('abcxyz')}"
        elif kind == 2:
            text = f"TOTAL {rng.choice(['EUR', 'USD', 'GBP', 'CHF'])} {rng.randint(1, 9)},{rng.randint(0, 999):03d}." \
                   f"{rng.randint(0, 99):02d}   VAT {rng.choice([5, 7, 19, 20, 21])}%"
        else:
            text = f"Ref. {rng.choice(['NL', 'DE', 'GB'])}-{rng.randint(100, 9999)} c/o {rng.choice(['Ms', 'Mr', 'Dr'])} " \
                   f"O'Neill, Tel. +{rng.randint(1, 49)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        draw.text((150, y), text, fill=0, font=font)
        y += round(font.size * 1.6)
    return image


def calibration_lines() -> list[np.ndarray]:
    """The line images the OCR job feeds its recogniser, from the calibration pages."""
    from ocr import make_page

    from snapdesk.processors.ocr import OcrEngine

    engine = OcrEngine(threads=1, rec_model="fp32")
    lines: list[np.ndarray] = []
    recognise = engine._recognise

    def keep(crop):
        lines.append(crop.copy())
        return recognise(crop)

    engine._recognise = keep
    for seed, turned, speckles in CALIBRATION_PAGES:
        engine.read(make_page(seed, rotate=turned, speckles=speckles)[0])
    for seed in (2001, 2002):
        engine.read(receipt_page(seed))
    return lines


def main() -> int:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from snapdesk.processors.ocr import fp32_rec_model

    lines = calibration_lines()
    source = fp32_rec_model()
    input_name = onnx.load(str(source)).graph.input[0].name

    class Lines(CalibrationDataReader):
        def __init__(self):
            self._batches = iter([{input_name: np.repeat((line.astype(np.float32) * (2 / 255) - 1)[None, None], 3,
                                                         axis=1)} for line in lines[::2]])

        def get_next(self):
            return next(self._batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared, opset13 = Path(tmp) / "prepared.onnx", Path(tmp) / "opset13.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        onnx.save(version_converter.convert_version(onnx.load(str(prepared)), 13), str(opset13))
        quantize_static(str(opset13), str(OUT), Lines(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    print(f"wrote {OUT} ({OUT.stat().st_size / 2**20:.1f} MiB) from {source.name}, calibrated on {len(lines[::2])} "
          f"of {len(lines)} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
