"""Everything that goes to disk and comes back: one room.

- ``atomic``: the single atomic-write helper (``staged_output``, ``write_text``, ``write_json``)
- ``checkpoint``: training checkpoints (``resnetlab/1``), ``load_model``, ``model_payload``
- ``rundir``: the run directory (config, meta with its segments, metrics, provenance)
- ``outputs``: is a folder one of our own runs (light: the CLI imports it before torch)
- ``loading``: safetensors with our metadata, ``load_any`` for every file we write
- ``weights``: the torchvision/timm layout in and out

Nothing is imported here, so ``from resnetlab.checkpoints.outputs import ...`` stays light.
"""
