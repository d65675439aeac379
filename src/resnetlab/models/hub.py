"""Hugging Face Hub conventions: ``save_pretrained(DIR)`` / ``from_pretrained(DIR or repo id)``.

A thin wrapper over ``huggingface_hub.PyTorchModelHubMixin`` (the optional extra
``pip install 'resnetlab[hub]'``)::

    from resnetlab.models.hub import HubModel
    hub = HubModel.from_loaded(load_any("runs/resnet20"))   # or HubModel("resnet50", options=...)
    hub.save_pretrained("resnet20-hub")                       # config.json + model.safetensors
    again = HubModel.from_pretrained("resnet20-hub")          # a local folder or a Hub repo id
    logits = again(x); loaded = again.to_loaded()              # the network / a LoadedModel

``config.json`` holds the architecture name and its options (a bottleneck net's ``stride_on``
always written out, see ``registry.explicit_layout``), the class names and the test preprocessing.
``model.safetensors`` is the network's bare state dict in the torchvision layout (no ``net.``
prefix) with resnetlab's metadata, so the same file also loads with ``resnetlab eval``/``predict``
and into torchvision/timm code. Loading is strict: a file that does not fit fails with the key report.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

try:
    from huggingface_hub import PyTorchModelHubMixin, constants, hf_hub_download
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("resnetlab.models.hub needs huggingface_hub: pip install 'resnetlab[hub]'") from error

from .registry import build_model, explicit_layout

WEIGHTS_FILE = constants.SAFETENSORS_SINGLE_FILE  # "model.safetensors"


class HubModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="resnetlab",
    tags=["image-classification", "resnet", "resnetlab"],
    paper_url="https://arxiv.org/abs/1512.03385",
):
    """A registered network plus what is needed to feed it; ``self.net`` is the network itself.

    ``preprocess`` is the JSON form of ``Preprocess`` (``checkpoints.loading.preprocess_to_json``);
    None means the network's own default is not known and ``to_loaded`` refuses.
    """

    def __init__(
        self, arch: str, options: dict | None = None, classes: list[str] | None = None, preprocess: dict | None = None
    ) -> None:
        super().__init__()
        self.arch = arch
        self.options = explicit_layout(arch, options or {})
        self.classes = list(classes or [])
        self.preprocess = preprocess
        self.net = build_model(arch, **self.options)
        # The config the mixin writes to config.json: the layout explicit, as in our checkpoints.
        self._hub_mixin_config = {
            "arch": arch,
            "options": self.options,
            "classes": self.classes,
            "preprocess": preprocess,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @classmethod
    def from_loaded(cls, loaded) -> HubModel:
        """From an ``inference.LoadedModel`` (``load_any``): the same weights, classes, preprocessing."""
        from ..checkpoints.loading import preprocess_to_json

        hub = cls(
            loaded.name,
            options=loaded.options,
            classes=list(loaded.classes),
            preprocess=json.loads(preprocess_to_json(loaded.preprocess)),
        )
        hub.net.load_state_dict(loaded.model.state_dict(), strict=True)
        return hub

    def to_loaded(self):
        """An ``inference.LoadedModel`` (eval mode) for ``predict`` / evaluation."""
        from ..checkpoints.checkpoint import LoadedModel
        from ..checkpoints.loading import preprocess_from_json

        if self.preprocess is None:
            raise ValueError("this HubModel has no preprocessing recorded; pass preprocess= when creating it")
        return LoadedModel(
            model=self.net.eval(),
            name=self.arch,
            options=dict(self.options),
            classes=tuple(self.classes),
            preprocess=preprocess_from_json(json.dumps(self.preprocess)),
            path=Path(WEIGHTS_FILE),
            iteration=0,
        )

    def _metadata(self) -> dict[str, str]:
        from ..checkpoints.checkpoint import FORMAT

        metadata = {
            "format": FORMAT,
            "arch": json.dumps({"name": self.arch, "options": self.options}),
            "classes": json.dumps(self.classes),
            "iteration": "0",
        }
        if self.preprocess is not None:
            metadata["preprocess"] = json.dumps(self.preprocess)
        return metadata

    def _save_pretrained(self, save_directory: Path) -> None:
        from ..checkpoints.interop import save_weights

        save_weights(self.net, Path(save_directory) / WEIGHTS_FILE, metadata=self._metadata())

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision,
        cache_dir,
        force_download,
        local_files_only,
        token,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs,
    ) -> HubModel:
        from ..checkpoints.interop import load_weights

        if Path(model_id).is_dir():
            weights = Path(model_id) / WEIGHTS_FILE
        else:
            weights = Path(
                hf_hub_download(
                    repo_id=model_id,
                    filename=WEIGHTS_FILE,
                    revision=revision,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    token=token,
                    local_files_only=local_files_only,
                )
            )
        hub = cls(**model_kwargs)
        load_weights(hub.net, weights, strict=strict)
        return hub.to(map_location).eval()


__all__ = ["WEIGHTS_FILE", "HubModel"]
