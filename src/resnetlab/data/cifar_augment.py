"""The paper's CIFAR augmentation as one batched gather (Sec. 4.2).

"4 pixels are padded on each side, and a 32x32 crop is randomly sampled from the padded image or
its horizontal flip." Padding happens after mean subtraction, so the border is the mean colour
(zero), as in the authors' Torch re-implementation. The training split is padded once and stored
channels-last (``[N, H+2p, W+2p, C]``); a batch is then a single advanced-indexing gather that picks
the images, the crop window and the flip at once, and comes out already in the channels_last layout
that the fast convolution kernels want. No per-image Python loop, no host round trip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_channels_last(images: torch.Tensor, pad: int) -> torch.Tensor:
    """``[N, C, H, W]`` -> zero-padded ``[N, H+2p, W+2p, C]`` (contiguous)."""
    return F.pad(images, (pad, pad, pad, pad)).permute(0, 2, 3, 1).contiguous()


def random_crop_flip(
    padded: torch.Tensor,
    index: torch.Tensor,
    size: tuple[int, int],
    generator: torch.Generator | None,
    *,
    flip: bool = True,
) -> torch.Tensor:
    """Random ``size`` crops of the padded images ``padded[index]``, half of them mirrored.

    ``padded`` is ``[N, H+2p, W+2p, C]``; the result is ``[n, C, h, w]`` in channels_last memory.
    With ``generator=None`` the crop is the centre (the original image) and nothing is flipped.
    The random draws come from a CPU generator and are moved to the device, so a seed gives the
    same batch on every device.
    """
    n = index.shape[0]
    h, w = size
    span_y, span_x = padded.shape[1] - h, padded.shape[2] - w
    if generator is None:
        dy = torch.full((n,), span_y // 2)
        dx = torch.full((n,), span_x // 2)
        flips = torch.zeros(n, dtype=torch.bool)
    else:
        dy = torch.randint(0, span_y + 1, (n,), generator=generator)
        dx = torch.randint(0, span_x + 1, (n,), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    device = padded.device
    dy, dx, flips, index = dy.to(device), dx.to(device), flips.to(device), index.to(device)
    rows = dy[:, None] + torch.arange(h, device=device)  # [n, h]
    cols = torch.arange(w, device=device)
    cols = torch.where(flips[:, None], w - 1 - cols, cols) + dx[:, None]  # a flip reads right to left
    out = padded[index[:, None, None], rows[:, :, None], cols[:, None, :]]  # [n, h, w, C]
    return out.permute(0, 3, 1, 2)


def mean_image(images: torch.Tensor, chunk: int = 10_000) -> torch.Tensor:
    """Per-pixel mean ``[3, H, W]`` of uint8 images on the [0, 1] scale (Sec. 4.2)."""
    total = torch.zeros(images.shape[1:], dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        total += images[start : start + chunk].to(torch.float64).sum(0)
    return (total / max(1, images.shape[0]) / 255.0).float()
