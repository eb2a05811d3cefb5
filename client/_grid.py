"""A torch tensor as image pixels, by wandb's rule for tensors: torchvision's
``make_grid(tensor, normalize=True)`` (defaults ``nrow=8``, ``padding=2``, black padding),
then ``* 255``, clamped to 0-255 and truncated to uint8.

torchvision cannot be installed beside every torch build, so the grid is laid out here. The
arithmetic runs on the tensor's own device; only the finished uint8 image is copied to the
host, once. Single-channel images stay one channel (mode ``L``): make_grid repeats the channel
three times, which shows the same picture at three times the size.
"""

from __future__ import annotations

import math
import sys
from typing import Any

NROW = 8
PADDING = 2


def tensor_pixels(tensor: Any) -> Any:
    """``tensor`` (HW, CHW or NCHW with C in 1, 3, 4; any device and dtype) as an HxWxC
    uint8 numpy array, normalised over the whole batch to 0-255 and laid out as a grid."""
    torch = sys.modules["torch"]
    t = tensor.detach()
    batch = _as_batch(t)
    if batch.numel() == 0:
        raise ValueError(f"Image(): the tensor of shape {tuple(t.shape)} holds no pixels")
    if batch.is_complex():
        raise TypeError(f"Image(): the tensor has dtype {t.dtype}; pass a real-valued tensor")
    if not batch.is_floating_point():
        batch = batch.to(torch.float32)
    low, high = torch.stack([batch.min(), batch.max()]).tolist()
    # torchvision's norm_ip: clamp to [low, high], then (x - low) / max(high - low, 1e-5)
    norm = batch.clamp(min=low, max=high).sub_(low).div_(max(high - low, 1e-5))
    pixels = norm.mul_(255).clamp_(0, 255).to(torch.uint8)
    if pixels.shape[0] == 1:
        hwc = pixels[0].permute(1, 2, 0)
    else:
        hwc = _grid(torch, pixels)
    return hwc.contiguous().cpu().numpy()


def _as_batch(t: Any) -> Any:
    shape = tuple(t.shape)
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[1] not in (1, 3, 4):
        hint = ""
        if len(shape) in (3, 4) and shape[-1] in (1, 3, 4):
            hint = " (channels last? pass tensor.permute(2, 0, 1) for HWC, (0, 3, 1, 2) for NHWC)"
        raise ValueError(
            f"Image(): a torch tensor of shape {shape} is not an image; pass HxW, CxHxW or an "
            f"NxCxHxW batch with C of 1, 3 or 4{hint}"
        )
    return t


def _grid(torch: Any, pixels: Any) -> Any:
    """An N x C x h x w uint8 batch as one (rows*(h+p)+p) x (cols*(w+p)+p) x C image."""
    n, c, h, w = pixels.shape
    cols = min(NROW, n)
    rows = math.ceil(n / cols)
    cell_h, cell_w = h + PADDING, w + PADDING
    if rows * cols > n:
        blank = pixels.new_zeros((rows * cols - n, c, h, w))
        pixels = torch.cat([pixels, blank])
    # each image with its top and left padding, the cells side by side, row after row
    cells = torch.nn.functional.pad(pixels, (PADDING, 0, PADDING, 0))
    cells = cells.view(rows, cols, c, cell_h, cell_w).permute(0, 3, 1, 4, 2)
    out = pixels.new_zeros((rows * cell_h + PADDING, cols * cell_w + PADDING, c))
    out[: rows * cell_h, : cols * cell_w] = cells.reshape(rows * cell_h, cols * cell_w, c)
    return out
