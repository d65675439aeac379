"""Everything that goes to disk and comes back: one room.

- ``atomic``: the single atomic-write helper (``staged_output``, ``write_text``, ``write_json``)
- ``checkpoint``: training checkpoints (``resnetlab/1``), ``load_model``, ``model_payload``
- ``rundir``: the run directory (config, meta with its segments, metrics, provenance)
- ``outputs``: is a folder one of our own runs (light: the CLI imports it before torch)
- ``loading``: safetensors with our metadata, ``load_any`` for every file we write
- ``interop``: the torchvision/timm key layout (``save_weights``, ``load_weights``)
- ``weights``: files of that layout imported and exported
- ``pretrained``: the shipped weights (``get_weights``, ``Weights``, ``ship``)

Nothing is imported here, so ``from resnetlab.checkpoints.outputs import ...`` stays light.
"""
