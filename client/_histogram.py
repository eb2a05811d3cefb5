"""``trackd.Histogram``, and what ``log()`` makes of arrays, tensors and lists of numbers.

As wandb does, a numpy array or torch tensor of more than 32 numbers becomes a 64-bin
histogram; a smaller one, or a list of numbers, is logged as a list. NaN and inf are counted
apart from the bins (``"nan"``, ``"inf"``, ``"-inf"``) and left out of the range. A tensor's
histogram is computed on its own device; only the bins cross to the host.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from ._wire import media
from ._wire.limits import INT64_MAX, INT64_MIN

MAX_LIST = 32


class Histogram:
    """A histogram to log, like numpy's: ``Histogram(values, num_bins=64)``, or one computed
    already: ``Histogram(np_histogram=np.histogram(values))``. At most 512 bins.

    Example::

        trackd.log({"weights": trackd.Histogram(layer.weight.detach(), num_bins=128)})
    """

    def __init__(
        self,
        sequence: Any = None,
        np_histogram: Any = None,
        num_bins: int = media.DEFAULT_BINS,
    ) -> None:
        if isinstance(num_bins, bool) or not isinstance(num_bins, int):
            raise TypeError(f"Histogram(): num_bins is {num_bins!r}; pass an int from 1 to 512")
        if not 1 <= num_bins <= media.MAX_BINS:
            raise ValueError(
                f"Histogram(): num_bins is {num_bins}; pass 1 to {media.MAX_BINS} bins"
            )
        if (sequence is None) == (np_histogram is None):
            raise ValueError(
                "Histogram(): pass either sequence (the values) or np_histogram (a "
                "(counts, edges) pair such as np.histogram returns), not both or neither"
            )
        if np_histogram is not None:
            self._value = _from_np_histogram(np_histogram)
        elif type(sequence).__module__.startswith("torch"):
            self._value = tensor_histogram(sequence, num_bins)
        else:
            self._value = array_histogram(_numbers("Histogram(): sequence", sequence), num_bins)

    @classmethod
    def _of(cls, value: dict[str, Any]) -> Histogram:
        """A Histogram holding ``value``, a histogram computed already (by watch())."""
        hist = cls.__new__(cls)
        hist._value = value
        return hist

    @property
    def bins(self) -> list[float]:
        """The bin edges (one more than the counts)."""
        return list(self._value["bins"])

    @property
    def histogram(self) -> list[int]:
        """The count in each bin."""
        return list(self._value["values"])

    def _raw(self, key: str) -> dict[str, Any]:
        return self._value

    def __repr__(self) -> str:
        return f"<trackd.Histogram {len(self._value['values'])} bins>"


def _numbers(where: str, sequence: Any) -> Any:
    import numpy as np

    try:
        arr = np.asarray(sequence)
    except Exception as exc:  # a ragged list, an object numpy cannot read
        raise TypeError(f"{where} cannot be read as numbers ({exc})") from None
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int8)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(
            f"{where} is a {type(sequence).__name__} of dtype {arr.dtype}; pass numbers"
        )
    return arr.reshape(-1)


def array_histogram(arr: Any, num_bins: int) -> dict[str, Any]:
    """The histogram of a flat numeric numpy array: numpy's bins over its finite values."""
    import numpy as np

    extra: dict[str, int] = {}
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            extra = _non_finite(
                int(np.isnan(arr).sum()), int(np.isposinf(arr).sum()), int(np.isneginf(arr).sum())
            )
            arr = arr[finite]
    counts, edges = np.histogram(arr, bins=num_bins)
    return {media.TYPE: media.HISTOGRAM, "bins": edges.tolist(), "values": counts.tolist(), **extra}


def _from_np_histogram(np_histogram: Any) -> dict[str, Any]:
    """A ``(counts, edges)`` pair, as ``np.histogram`` returns it, checked."""
    where = "Histogram(): np_histogram"
    if not isinstance(np_histogram, (tuple, list)) or len(np_histogram) != 2:
        raise TypeError(
            f"{where} is a {type(np_histogram).__name__}; pass the (counts, edges) pair "
            "np.histogram returns"
        )
    counts = _numbers(f"{where}[0] (the counts)", np_histogram[0]).tolist()
    edges = _numbers(f"{where}[1] (the bin edges)", np_histogram[1]).tolist()
    if len(edges) != len(counts) + 1 or not 1 <= len(counts) <= media.MAX_BINS:
        raise ValueError(
            f"{where} has {len(counts)} counts and {len(edges)} edges; pass 1 to "
            f"{media.MAX_BINS} counts and one edge more than counts"
        )
    if not all(math.isfinite(e) for e in edges) or any(
        a > b for a, b in zip(edges[:-1], edges[1:], strict=True)
    ):
        raise ValueError(f"{where}: the bin edges must be finite and increasing")
    if not all(math.isfinite(c) and c >= 0 for c in counts):
        raise ValueError(f"{where}: the counts must be finite and not negative")
    counts = [int(c) if float(c).is_integer() else float(c) for c in counts]
    return {media.TYPE: media.HISTOGRAM, "bins": [float(e) for e in edges], "values": counts}


def _non_finite(nan: int, inf: int, neg_inf: int) -> dict[str, int]:
    counts = {"nan": nan, "inf": inf, "-inf": neg_inf}
    return {k: v for k, v in counts.items() if v}


def device_histogram(tensor: Any, num_bins: int) -> Any:
    """A 1-d float64 tensor: [min, max, count of each of ``num_bins`` bins over [min, max]
    of the finite values, nan, inf, -inf count], binned as torch.histc does (bin
    ``(x - min) * bins / (max - min)``, the maximum in the last bin). On an accelerator it is
    computed there and not waited for; read it with :func:`histogram_from_device`."""
    torch = sys.modules["torch"]
    if tensor.is_sparse:  # a sparse gradient (nn.Embedding(sparse=True)): its implicit zeros
        coalesced = tensor.detach().coalesce()
        values = coalesced.values().reshape(-1).float().cpu().numpy()
        zeros = tensor.numel() - values.size
        return torch.from_numpy(_numpy_bins(values, num_bins, zeros))
    flat = tensor.detach().reshape(-1)
    if not flat.is_floating_point() or flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.to(torch.float32)
    if flat.device.type == "cpu":  # numpy takes a fifth of the time of torch's small ops
        return torch.from_numpy(_numpy_bins(flat.numpy(), num_bins))
    if torch.are_deterministic_algorithms_enabled():  # bincount on CUDA is not deterministic
        return torch.from_numpy(_numpy_bins(flat.cpu().numpy(), num_bins))
    return _torch_bins(torch, flat, num_bins)


def _torch_bins(torch: Any, flat: Any, num_bins: int) -> Any:
    """:func:`device_histogram`'s numbers by torch ops on ``flat``'s device, no waiting."""
    finite = torch.isfinite(flat)
    inf = math.inf
    low = torch.where(finite, flat, inf).amin() if flat.numel() else flat.new_tensor(inf)
    high = torch.where(finite, flat, -inf).amax() if flat.numel() else flat.new_tensor(-inf)
    span = high - low
    safe = torch.where(finite, flat, low.clamp(-3e38, 3e38))
    index = ((safe - low) * num_bins / torch.where(span > 0, span, 1.0)).long()
    index = torch.where(finite, index.clamp_(0, num_bins - 1), num_bins)  # non-finite: past the end
    counts = torch.bincount(index, minlength=num_bins + 1)[:num_bins]
    non_finite = [torch.isnan(flat).sum(), (flat == inf).sum(), (flat == -inf).sum()]
    return torch.cat(
        [torch.stack([low, high]).double(), counts.double(), torch.stack(non_finite).double()]
    )


def _numpy_bins(a: Any, num_bins: int, zeros: int = 0) -> Any:
    """:func:`device_histogram`'s numbers for a flat float numpy array (and ``zeros`` more
    zero values, the implicit ones of a sparse tensor)."""
    import numpy as np

    out = np.zeros(num_bins + 5, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        out[-3:] = np.isnan(a).sum(), np.isposinf(a).sum(), np.isneginf(a).sum()
        a = a[finite]
    if zeros:
        a = np.append(a, a.dtype.type(0))  # one zero in the range; the rest added below
    if not a.size:
        out[:2] = math.inf, -math.inf
        return out
    low, high = a.min(), a.max()
    span = high - low if high > low else a.dtype.type(1)
    index = ((a - low) * a.dtype.type(num_bins) / span).astype(np.intp)
    np.minimum(index, num_bins - 1, out=index)
    out[:2] = low, high
    out[2 : 2 + num_bins] = np.bincount(index, minlength=num_bins)
    if zeros:
        out[2 + index[-1]] += zeros - 1
    return out


def histogram_from_device(values: list[float], num_bins: int) -> dict[str, Any]:
    """The histogram value from :func:`device_histogram`'s numbers (copied to the host)."""
    low, high = values[0], values[1]
    counts = [int(c) for c in values[2 : 2 + num_bins]]
    extra = _non_finite(*(int(c) for c in values[2 + num_bins :]))
    total = sum(counts)
    if not total:  # no finite values: numpy's empty histogram over [0, 1]
        edges = [i / num_bins for i in range(num_bins + 1)]
    elif low == high:  # one value: one bin, as wandb's watch() does
        return {media.TYPE: media.HISTOGRAM, "bins": [low, high], "values": [total], **extra}
    else:
        step = (high - low) / num_bins
        edges = [low + i * step for i in range(num_bins)] + [high]
    return {media.TYPE: media.HISTOGRAM, "bins": edges, "values": counts, **extra}


def tensor_histogram(tensor: Any, num_bins: int) -> dict[str, Any]:
    """The histogram of a torch tensor, computed on its device."""
    if tensor.is_complex():
        raise TypeError(f"Histogram(): the tensor has dtype {tensor.dtype}; pass real numbers")
    return histogram_from_device(device_histogram(tensor, num_bins).tolist(), num_bins)


def array_value(key: str, arr: Any) -> Any:
    """What ``log()`` stores for a numpy array: a number, a list, or a histogram."""
    import numpy as np

    flat = _numbers(f"log(): value for key {key!r} (a numpy array)", arr)
    if flat.size == 1:
        return None  # the caller logs the scalar
    if flat.size <= MAX_LIST:
        return number_list(key, flat.tolist())
    if np.issubdtype(flat.dtype, np.integer):
        flat = flat.astype(np.float64)
    return array_histogram(flat, media.DEFAULT_BINS)


def tensor_value(key: str, tensor: Any) -> Any:
    """What ``log()`` stores for a torch tensor of more than one element."""
    if tensor.is_complex() or tensor.dtype == sys.modules["torch"].bool:
        if tensor.is_complex():
            raise TypeError(
                f"log(): value for key {key!r} is a complex torch tensor; log real numbers"
            )
        tensor = tensor.to(sys.modules["torch"].int8)
    if tensor.numel() <= MAX_LIST:
        return number_list(key, tensor.detach().reshape(-1).cpu().tolist())
    return tensor_histogram(tensor, media.DEFAULT_BINS)


def number_list(key: str, values: list[Any]) -> list[Any]:
    """``values`` if it is a flat list of numbers every process can store, else an error."""
    out = []
    for v in values:
        t = type(v)
        if t is float or t is bool:
            out.append(v)
        elif t is int and INT64_MIN <= v <= INT64_MAX:
            out.append(v)
        elif type(v).__module__ == "numpy" and getattr(v, "ndim", 1) == 0:
            return number_list(key, [x.item() if hasattr(x, "item") else x for x in values])
        else:
            raise TypeError(
                f"log(): value for key {key!r} is a list holding {v!r} ({t.__name__}); "
                "log a list of numbers, a numpy array, or a trackd.Histogram"
            )
    return out
