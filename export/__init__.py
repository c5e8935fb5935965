"""Training, transfer learning and (later) export of the zoo's networks.

Kept import-light on purpose: the torch-free service imports ``export.repository``, so
nothing here may import torch. Import the submodules you need:

* :mod:`export.recipes` - one training recipe per network, ``DEFAULT_SET`` (no torch)
* :mod:`export.data` - digits and class-per-folder data, ``Preprocessing``
* :mod:`export.weights` - checkpoints, torchvision weights, head replacement, freezing
* :mod:`export.train` - ``train``, ``finetune``, ``train_default_set``

``python -m export --help`` lists the commands.
"""
