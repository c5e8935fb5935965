"""ONNX export of the zoo's trained networks, their checks and variants, and publishing them.

* :mod:`export.onnx_export` - the float32 ONNX file, its metadata, parity with PyTorch
* :mod:`export.quantize` - INT8 (static QDQ) and float16 variants
* :mod:`export.build` - train or reuse, export, verify and publish (``python -m export build``)
* :mod:`export.verify` - re-check a published repository
* :mod:`export.report` - docs/model-zoo.md from the published cards

Training lives in :mod:`training`, the repository's contract in :mod:`repository`.
``python -m export --help`` lists the commands.
"""
