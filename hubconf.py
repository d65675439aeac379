"""torch.hub entry points: ``torch.hub.load(REPO_DIR, "resnet20", source="local", weights="cifar10")``.

Every registered network is an entry point taking ``build_model``'s arguments; ``weights`` names
shipped trained weights by data set (``"cifar10"``) or in full (``"resnet20.cifar10"``).
"""

import sys
from pathlib import Path

dependencies = ["torch", "numpy", "PIL", "safetensors"]

try:
    from resnetlab.models import build_model, list_models
except ImportError:  # a plain checkout: the package lives under src/
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from resnetlab.models import build_model, list_models


def _entry_point(name):
    def entry(weights=None, **options):
        return build_model(name, weights=weights, **options)

    entry.__name__ = name
    entry.__doc__ = f"resnetlab {name}: build_model({name!r}, weights=None, **options)."
    return entry


for _name in list_models():
    globals()[_name] = _entry_point(_name)
