"""RoI pooling (Fast R-CNN's max pooling) and RoIAlign in plain PyTorch.

Both follow torchvision's kernels arithmetic exactly (same rounding, same bins, same bilinear
boundary rules), so ``impl="auto"`` may use ``torchvision.ops`` where it imports and the reference
gives the same numbers on CPU. ``rois`` are ``[K, 5]``: ``(batch_index, x1, y1, x2, y2)`` in image
pixels; ``spatial_scale`` maps them to the feature map (1/16 for the paper's conv4_x, Sec. 4.3).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .boxes import torchvision_ops, use_torchvision

# Gathered elements per chunk of RoIs in roi_align: bounds peak memory to ~256 MB in float32.
_CHUNK_ELEMENTS = 1 << 26


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    # C's round(), which torchvision/Caffe use; torch.round rounds half to even.
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def _bin_edges(start: int, length: int, pooled: int, limit: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Caffe's bins along one axis (float32 arithmetic, as the kernel) and whether they are exactly
    ``adaptive_max_pool2d``'s bins over ``start:start + length`` (true unless float rounding slips)."""
    bin_size = np.float32(length) / np.float32(pooled)
    p = np.arange(pooled, dtype=np.float32)
    lo = np.floor(p * bin_size).astype(np.int64)
    hi = np.ceil((p + 1) * bin_size).astype(np.int64)
    q = np.arange(pooled, dtype=np.int64)
    adaptive = np.array_equal(lo, (q * length) // pooled) and np.array_equal(hi, -((-(q + 1) * length) // pooled))
    return np.clip(lo + start, 0, limit), np.clip(hi + start, 0, limit), adaptive


def _masked_argmax(crop: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor):
    """(y, x) of the max over each (row bin x column bin) of ``crop`` ``[C, h, w]``, and the empty bins."""
    neg = torch.finfo(crop.dtype).min
    by_col, col_arg = torch.where(cols, crop[:, :, None, :], neg).max(dim=-1)  # [C, h, PW]
    row_arg = torch.where(rows[:, :, None], by_col[:, None, :, :], neg).argmax(dim=2)  # [C, PH, PW]
    col_arg = col_arg.gather(1, row_arg)  # out[c, i, j] = col_arg[c, row_arg[c, i, j], j]
    empty = ~(rows.any(1)[:, None] & cols.any(1)[None, :])
    return row_arg, col_arg, empty


def roi_pool_reference(
    features: torch.Tensor, rois: torch.Tensor, output_size: int | tuple[int, int], spatial_scale: float = 1.0
) -> torch.Tensor:
    """Fast R-CNN RoI max pooling: each RoI is split into ``output_size`` bins, max within each bin.

    Empty bins (an RoI beyond the map) give 0, as in the Caffe/torchvision kernel. The arg-max of
    every bin is found without autograd, then one gather makes the output, so the backward pass is
    a single scatter into the map, as in the kernel. Inside the map the bins are exactly adaptive
    max pooling's, which finds the arg-max (much faster than the general masked search).
    """
    ph, pw = _pair(output_size)
    _, c, height, width = features.shape
    if len(rois) == 0:
        return features.new_zeros(0, c, ph, pw)
    coords = _round_half_away(rois[:, 1:].detach().float() * torch.tensor(spatial_scale, dtype=torch.float32))
    batch = rois[:, 0].long().tolist()
    index = torch.zeros(len(rois), c, ph, pw, dtype=torch.long, device=features.device)
    valid = torch.ones(len(rois), 1, ph, pw, dtype=torch.bool, device=features.device)
    with torch.no_grad():
        for k, (x1, y1, x2, y2) in enumerate(coords.long().tolist()):
            h, w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
            row_lo, row_hi, rows_exact = _bin_edges(y1, h, ph, height)
            col_lo, col_hi, cols_exact = _bin_edges(x1, w, pw, width)
            image = features[batch[k]]
            if rows_exact and cols_exact:
                # Parts of the RoI beyond the map are padded with the lowest value: they never win a
                # bin that reaches into the map, and bins wholly outside are marked empty (0).
                crop = image[:, max(y1, 0) : min(y1 + h, height), max(x1, 0) : min(x1 + w, width)]
                pad = (max(-x1, 0), max(x1 + w - width, 0), max(-y1, 0), max(y1 + h - height, 0))
                if any(pad):
                    crop = F.pad(crop, pad, value=torch.finfo(crop.dtype).min)
                if crop.numel() == 0:
                    valid[k] = False
                    continue
                _, arg = F.adaptive_max_pool2d(crop, (ph, pw), return_indices=True)
                ys, xs = arg // w + y1, arg % w + x1
                inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
                valid[k, 0] = inside.all(0)
                ys, xs = ys.clamp(0, height - 1), xs.clamp(0, width - 1)
            else:
                top, bottom = int(row_lo.min()), int(row_hi.max())
                left, right = int(col_lo.min()), int(col_hi.max())
                if bottom <= top or right <= left:
                    valid[k] = False
                    continue
                span_y, span_x = np.arange(top, bottom), np.arange(left, right)
                rows = torch.from_numpy((span_y >= row_lo[:, None]) & (span_y < row_hi[:, None]))
                cols = torch.from_numpy((span_x >= col_lo[:, None]) & (span_x < col_hi[:, None]))
                ys, xs, empty = _masked_argmax(
                    image[:, top:bottom, left:right], rows.to(features.device), cols.to(features.device)
                )
                ys, xs = ys + top, xs + left
                valid[k, 0] = ~empty
            channel = torch.arange(c, device=features.device)[:, None, None]
            index[k] = ((batch[k] * c + channel) * height + ys) * width + xs
    out = features.reshape(-1)[index]
    return torch.where(valid, out, torch.zeros((), dtype=out.dtype, device=out.device))


def _sample_axis(start: torch.Tensor, size: torch.Tensor, pooled: int, grid: int, limit: int):
    """Bilinear sample positions along one axis: low/high indices and weights ``[K, pooled*grid]``."""
    steps = torch.arange(pooled * grid, device=start.device, dtype=start.dtype)
    bin_size = size / pooled
    pos = (
        start[:, None]
        + (steps // grid)[None] * bin_size[:, None]
        + ((steps % grid) + 0.5)[None] * (bin_size / grid)[:, None]
    )
    valid = (pos >= -1.0) & (pos <= limit)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    at_edge = low >= limit - 1
    low = torch.where(at_edge, torch.full_like(low, limit - 1), low)
    high = torch.where(at_edge, low, low + 1)
    pos = torch.where(at_edge, low.to(pos.dtype), pos)
    frac = pos - low.to(pos.dtype)
    return low, high, (1 - frac) * valid, frac * valid


def _align_group(features, rois, ph, pw, gh, gw, spatial_scale, aligned) -> torch.Tensor:
    _, c, height, width = features.shape
    offset = 0.5 if aligned else 0.0
    boxes = rois[:, 1:].to(features.dtype) * spatial_scale - offset
    h_size, w_size = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    if not aligned:  # legacy behaviour: RoIs at least one feature cell wide
        h_size, w_size = h_size.clamp(min=1.0), w_size.clamp(min=1.0)
    y_lo, y_hi, wy_lo, wy_hi = _sample_axis(boxes[:, 1], h_size, ph, gh, height)
    x_lo, x_hi, wx_lo, wx_hi = _sample_axis(boxes[:, 0], w_size, pw, gw, width)
    batch = rois[:, 0].long()
    # Separable bilinear interpolation: first along y (gather rows), then along x (gather columns).
    rows = (
        features[batch[:, None], :, y_lo] * wy_lo[:, :, None, None]
        + features[batch[:, None], :, y_hi] * wy_hi[:, :, None, None]
    )  # [K, Sy, C, W]
    k, sy = rows.shape[:2]
    idx_lo = x_lo[:, None, None, :].expand(k, sy, c, -1)
    idx_hi = x_hi[:, None, None, :].expand(k, sy, c, -1)
    samples = (
        rows.gather(3, idx_lo) * wx_lo[:, None, None, :] + rows.gather(3, idx_hi) * wx_hi[:, None, None, :]
    )  # [K, Sy, C, Sx]
    samples = samples.permute(0, 2, 1, 3).reshape(k, c, ph, gh, pw, gw)
    return samples.mean(dim=(3, 5))


def roi_align_reference(
    features: torch.Tensor,
    rois: torch.Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> torch.Tensor:
    """RoIAlign (Mask R-CNN): average of bilinear samples on a regular grid in each bin, no rounding.

    ``sampling_ratio <= 0`` picks ``ceil(roi_size / output_size)`` samples per bin per RoI, as
    torchvision does; RoIs sharing a grid are then computed together.
    """
    ph, pw = _pair(output_size)
    _, c, _, width = features.shape
    out = features.new_zeros(len(rois), c, ph, pw)
    if len(rois) == 0:
        return out
    if sampling_ratio > 0:
        grids = torch.full((len(rois), 2), sampling_ratio, dtype=torch.long)
    else:
        scaled = rois[:, 1:].detach().float().cpu() * spatial_scale
        hs, ws = scaled[:, 3] - scaled[:, 1], scaled[:, 2] - scaled[:, 0]
        if not aligned:
            hs, ws = hs.clamp(min=1.0), ws.clamp(min=1.0)
        grids = torch.stack((torch.ceil(hs / ph), torch.ceil(ws / pw)), 1).long().clamp(min=1)
    for gh, gw in torch.unique(grids, dim=0).tolist():
        index = torch.nonzero((grids[:, 0] == gh) & (grids[:, 1] == gw)).flatten().to(rois.device)
        chunk = max(1, _CHUNK_ELEMENTS // max(1, ph * gh * c * max(width, pw * gw)))
        for start in range(0, len(index), chunk):
            part = index[start : start + chunk]
            out[part] = _align_group(features, rois[part], ph, pw, gh, gw, spatial_scale, aligned)
    return out


def roi_pool(features, rois, output_size, spatial_scale: float = 1.0, impl: str = "auto") -> torch.Tensor:
    if use_torchvision(impl):
        return torchvision_ops().roi_pool(features, rois.to(features.dtype), _pair(output_size), spatial_scale)
    return roi_pool_reference(features, rois, output_size, spatial_scale)


def roi_align(
    features,
    rois,
    output_size,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
    impl: str = "auto",
) -> torch.Tensor:
    if use_torchvision(impl):
        return torchvision_ops().roi_align(
            features, rois.to(features.dtype), _pair(output_size), spatial_scale, sampling_ratio, aligned
        )
    return roi_align_reference(features, rois, output_size, spatial_scale, sampling_ratio, aligned)
