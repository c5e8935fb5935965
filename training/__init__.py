"""Training and transfer learning for the zoo's networks, on CPU, CUDA or torchrun.

* :mod:`training.recipes` - one training recipe per network, ``DEFAULT_SET`` (no torch)
* :mod:`training.data` - digits and class-per-folder data, ``Preprocessing``
* :mod:`training.transforms` - the image transforms, written with Pillow, numpy and torch
* :mod:`training.weights` - checkpoints, torchvision weights, head replacement, freezing
* :mod:`training.train` - ``train``, ``finetune``, ``train_default_set``
* :mod:`training.config` - what a run is asked for (``TrainConfig``, ``FinetuneConfig``) and gives back (no torch)
* :mod:`training.loop` - the training loop both share, ``evaluate_model``
* :mod:`training.distributed` - torchrun ranks, the device, its mixed precision and threads
* :mod:`training.transfer` - the three fine-tuning modes side by side

``python -m training --help`` lists the commands.
"""
