"""PyInstaller hook for rapidocr-onnxruntime, which the community hooks do not cover.

rapidocr finds its ONNX models and config.yaml beside its own modules
(``Path(rapidocr_onnxruntime.__file__).parent / "models"``, which is also where
snapdesk.processors.ocr looks); without them the frozen app cannot read any text.
"""

from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("rapidocr_onnxruntime", includes=["**/*.yaml", "models/*.onnx"])
