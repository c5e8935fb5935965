"""ONNX export of the zoo's trained networks, their checks and variants, and publishing them.

* :mod:`export.onnx_export` - the float32 ONNX file, its metadata, ``onnx.checker``
* :mod:`export.measure` - ONNX Runtime against PyTorch (parity), test accuracy, latency
* :mod:`export.quantize` - INT8 (static QDQ) and float16 files
* :mod:`export.build` - train or reuse, export, verify and publish (``python -m export build``), in steps:
  :mod:`export.options` (what a build does), :mod:`export.checkpoints` (train or reuse),
  :mod:`export.jobs` (a network ready to export), :mod:`export.pipeline` (export, verify, publish),
  :mod:`export.variants` (INT8 and float16, judged against float32)
* :mod:`export.torchvision_import` - publish torchvision-format weights (``python -m export import-torchvision``)
* :mod:`export.graph_summary` - a per-layer summary read from any ONNX graph, without torch
* :mod:`export.verify` - re-check a published repository
* :mod:`export.report` - docs/published-models.md from the published cards

Training lives in :mod:`training`, the repository's contract in :mod:`repository`.
``python -m export --help`` lists the commands.
"""
