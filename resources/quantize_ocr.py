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

Before quantising, the scalar scale-and-shift after each convolution (PP-LCNetV3's "learnable
affine blocks", a Mul and an Add over the whole tensor) is folded into that convolution's weights
and bias, and the one after an activation into the next convolution where that is a 1x1 one
without padding (``fold_affine``): the same function, with half the element-wise passes.

Last, every hard-swish activation, which the converted graph spells out as four element-wise
nodes (Add 3, Clip 0-6, Mul, Div 6), becomes one HardSwish node (opset 14): the same numbers,
8 % less time a line (``fuse_hardswish``).
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
        folded_model = onnx.load(str(source))
        folded = fold_affine(folded_model)
        folded_path = Path(tmp) / "folded.onnx"
        onnx.save(folded_model, str(folded_path))
        print(f"{folded} affine blocks folded into convolutions")
        quant_pre_process(str(folded_path), str(prepared), skip_symbolic_shape=True)
        onnx.save(version_converter.convert_version(onnx.load(str(prepared)), 13), str(opset13))
        quantize_static(str(opset13), str(OUT), Lines(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    model = onnx.load(str(OUT))
    fused = fuse_hardswish(model)
    onnx.save(model, str(OUT))
    print(f"{fused} hard-swish activations fused")
    print(f"wrote {OUT} ({OUT.stat().st_size / 2**20:.1f} MiB) from {source.name}, calibrated on {len(lines[::2])} "
          f"of {len(lines)} lines")
    return 0


def fold_affine(model) -> int:
    """Mul(x, s) -> Add(., b) with scalar s and b folded into the Conv that makes x, or into the 1x1
    Conv without padding that takes the result; in place; how many pairs were folded."""
    from onnx import numpy_helper

    graph = model.graph
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in list(graph.node):  # weights held in Constant nodes become initializers
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            graph.initializer.append(numpy_helper.from_array(values[node.output[0]], node.output[0]))
            graph.node.remove(node)
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    by_output = {out: node for node in graph.node for out in node.output}

    def scalar(name):
        return name in values and values[name].size == 1

    def put(name, array):
        values[name] = array.astype(np.float32)
        for init in graph.initializer:
            if init.name == name:
                init.CopyFrom(numpy_helper.from_array(values[name], name))
                return name
        graph.initializer.append(numpy_helper.from_array(values[name], name))
        return name

    def attrs(node):
        return {a.name: (list(a.ints) if a.ints else a.i) for a in node.attribute}

    dropped, folded = set(), 0
    for mul in list(graph.node):
        if mul.op_type != "Mul" or not any(scalar(n) for n in mul.input):
            continue
        s_name = next(n for n in mul.input if scalar(n))
        x = next(n for n in mul.input if n != s_name)
        after = users.get(mul.output[0], [])
        if len(after) != 1 or after[0].op_type != "Add":
            continue
        add = after[0]
        b_name = next((n for n in add.input if n != mul.output[0] and scalar(n)), None)
        if b_name is None:
            continue
        s, b = float(values[s_name].reshape(-1)[0]), float(values[b_name].reshape(-1)[0])
        conv = by_output.get(x)
        nxt = users.get(add.output[0], [])
        if conv is not None and conv.op_type == "Conv" and len(users.get(x, [])) == 1 and conv.input[1] in values:
            weight = values[conv.input[1]]
            bias = values[conv.input[2]] if len(conv.input) > 2 else np.zeros(weight.shape[0], np.float32)
            w_name, b_new = put(conv.name + "_folded_w", weight * s), put(conv.name + "_folded_b", bias * s + b)
            del conv.input[1:]
            conv.input.extend([w_name, b_new])
            conv.output[0] = add.output[0]
        elif len(nxt) == 1 and nxt[0].op_type == "Conv" and nxt[0].input[1] in values and len(users.get(x, [])) >= 1:
            conv, a = nxt[0], attrs(nxt[0])
            weight = values[conv.input[1]]
            if weight.shape[2:] != (1, 1) or any(a.get("pads", [0]) or [0]) or a.get("group", 1) != 1:
                continue
            bias = values[conv.input[2]] if len(conv.input) > 2 else np.zeros(weight.shape[0], np.float32)
            w_name = put(conv.name + "_folded_w", weight * s)
            b_new = put(conv.name + "_folded_b", bias + b * weight.sum(axis=(1, 2, 3)))
            del conv.input[1:]
            conv.input.extend([w_name, b_new])
            conv.input[0] = x
        else:
            continue
        dropped.update((id(mul), id(add)))
        folded += 1
    kept = [node for node in graph.node if id(node) not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input}
    for init in [init for init in graph.initializer if init.name not in used]:
        graph.initializer.remove(init)
    return folded


def fuse_hardswish(model) -> int:
    """Add(x, 3) -> Clip(0, 6) -> Mul(x, .) -> Div(6) replaced by HardSwish(x), in place; how many."""
    from onnx import helper, numpy_helper

    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    by_output = {out: node for node in graph.node for out in node.output}
    users: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1

    def scalar(name, value):
        return name in consts and consts[name].size == 1 and float(consts[name].reshape(-1)[0]) == value

    dropped, fused = set(), 0
    for div in graph.node:
        if div.op_type != "Div" or not scalar(div.input[1], 6.0):
            continue
        mul = by_output.get(div.input[0])
        if mul is None or mul.op_type != "Mul":
            continue
        clip = next((by_output[n] for n in mul.input if n in by_output and by_output[n].op_type == "Clip"), None)
        if clip is None or not (scalar(clip.input[1], 0.0) and scalar(clip.input[2], 6.0)):
            continue
        x = next(n for n in mul.input if n != clip.output[0])
        add = by_output.get(clip.input[0])
        if add is None or add.op_type != "Add" or x not in add.input:
            continue
        if not scalar(next(n for n in add.input if n != x), 3.0):
            continue
        if any(users.get(node.output[0], 0) != 1 for node in (add, clip, mul)):
            continue
        dropped.update(id(node) for node in (add, clip, mul))
        div.CopyFrom(helper.make_node("HardSwish", [x], [div.output[0]], name=div.name + "_hardswish"))
        fused += 1
    kept = [node for node in graph.node if id(node) not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, 14)
    return fused


if __name__ == "__main__":
    sys.exit(main())
