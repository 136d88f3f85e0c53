"""PyInstaller hook for blurhash-python: its compiled part (blurhash._functions) is a cffi module,
which imports cffi's ``_cffi_backend`` from C, where PyInstaller's analysis cannot see it."""

hiddenimports = ["_cffi_backend"]
