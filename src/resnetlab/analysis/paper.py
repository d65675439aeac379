"""The paper's published numbers that reports print *beside* ours (never in place of them).

Only reference values live here; every number we measured is read from run directories.
"""

from __future__ import annotations

# Table 6: CIFAR-10 test error (%), ResNets with option A. ResNet-110 is the best of 5 runs; the
# paper also gives its mean and std over those runs, (6.61, 0.16).
TABLE6_ERROR = {
    "resnet20": 8.75,
    "resnet32": 7.51,
    "resnet44": 7.17,
    "resnet56": 6.97,
    "resnet110": 6.43,
    "resnet1202": 7.93,
}
TABLE6_RESNET110_MEAN_STD = (6.61, 0.16)
# Sec. 4.2: the networks the paper warms up at lr 0.01 ("0.1 is slightly too large to start converging").
PAPER_WARMUP = ("resnet110", "resnet1202")

# Table 3: ImageNet val, ResNet-34 with shortcut options A/B/C, 10-crop (top-1, top-5 error %).
TABLE3_RESNET34 = {"A": (25.03, 7.76), "B": (24.52, 7.46), "C": (24.19, 7.40)}

# The full schedule (Sec. 4.2) the --budget fraction scales.
PAPER_ITERATIONS = 64_000
PAPER_MILESTONES = (32_000, 48_000)

# The CIFAR-10 networks of Sec. 4.2 (Table 6, Fig. 6): n = 3, 5, 7, 9, 18 (and 200 for ResNet-1202).
CIFAR_RESNETS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202")
CIFAR_PLAINS = ("plain20", "plain32", "plain44", "plain56", "plain110")

# Fig. 7 shows these networks.
FIG7_MODELS = ("plain20", "plain56", "resnet20", "resnet56", "resnet110")


def pretty_name(model: str) -> str:
    """``resnet110`` -> ``ResNet-110``, ``plain20`` -> ``plain-20``, ``vgg16`` -> ``VGG-16``."""
    for prefix, title in (("resnet", "ResNet-"), ("plain", "plain-"), ("vgg", "VGG-")):
        if model.startswith(prefix) and model[len(prefix) :].isdigit():
            return title + model[len(prefix) :]
    return model


def depth_of(model: str) -> int:
    digits = "".join(ch for ch in model if ch.isdigit())
    return int(digits) if digits else 0


def table6_text(model: str) -> str:
    """Table 6's entry for ``model`` as tables print it: ResNet-110 with its mean ± std over 5 runs."""
    if model == "resnet110":
        mean, std = TABLE6_RESNET110_MEAN_STD
        return f"{TABLE6_ERROR[model]:.2f} ({mean:.2f} ± {std:.2f})"
    return f"{TABLE6_ERROR[model]:.2f}" if model in TABLE6_ERROR else "-"
