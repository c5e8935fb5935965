"""Training, transfer learning, ONNX export and the model repository of the zoo's networks.

Kept import-light on purpose: the torch-free service imports ``export.repository``, so
nothing here may import torch. Import the submodules you need:

* :mod:`export.recipes` - one training recipe per network, ``DEFAULT_SET`` (no torch)
* :mod:`export.data` - digits and class-per-folder data, ``Preprocessing``
* :mod:`export.weights` - checkpoints, torchvision weights, head replacement, freezing
* :mod:`export.train` - ``train``, ``finetune``, ``train_default_set``
* :mod:`export.transfer` - the three fine-tuning modes side by side
* :mod:`export.onnx_export`, :mod:`export.quantize` - ONNX files, parity, INT8 and float16
* :mod:`export.build` - train or reuse, export, verify and publish (``python -m export build``)
* :mod:`export.repository` - the model repository on disk (no torch: the service reads it)
* :mod:`export.verify` - re-check a published repository

``python -m export --help`` lists the commands.
"""
