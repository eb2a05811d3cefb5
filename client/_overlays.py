"""What an image carries besides its pixels: class labels, bounding boxes and masks, checked
at the call site and turned into the raw forms of :mod:`trackd._wire.media`.

Boxes follow wandb's format::

    {"predictions": {"box_data": [{"position": {"minX": 0.1, "maxX": 0.4, "minY": 0.2,
                                                "maxY": 0.5},
                                   "class_id": 1, "box_caption": "cat", "scores": {"p": 0.9}}],
                     "class_labels": {1: "cat"}}}

``position`` is ``{"minX", "maxX", "minY", "maxY"}`` or ``{"middle": [x, y], "width",
"height"}``; with ``"domain": "pixel"`` the numbers are pixels, otherwise fractions of the
image (0-1). Masks are ``{"ground_truth": {"mask_data": 2-D integer array (0-255), or "path":
a PNG file, "class_labels": {id: name}}}``. Without ``class_labels`` every id used is named
``class_<id>``, as wandb does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from ._wire.limits import text_problem

_CORNERS = ("minX", "maxX", "minY", "maxY")
_MIDDLE = ("middle", "width", "height")
_BOX_KEYS = frozenset({"position", "domain", "class_id", "box_caption", "scores"})


class Classes:
    """The classes of an image's boxes and masks: a list of ``{"id": int, "name": str}``.

    Example::

        classes = trackd.Classes([{"id": 0, "name": "background"}, {"id": 1, "name": "cat"}])
        trackd.log({"img": trackd.Image(pixels, classes=classes, masks=...)})
    """

    def __init__(self, class_set: Iterable[Mapping[str, Any]]) -> None:
        self._class_set = check_classes("Classes()", class_set)

    def labels(self) -> dict[int, str]:
        """The classes as id -> name."""
        return {c["id"]: c["name"] for c in self._class_set}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Classes) and other._class_set == self._class_set

    def __repr__(self) -> str:
        return f"Classes({self._class_set!r})"


def check_classes(where: str, class_set: Any) -> list[dict[str, Any]]:
    """A list of ``{"id": int, "name": str}`` from ``class_set``, or a clear error."""
    if isinstance(class_set, Classes):
        return list(class_set._class_set)
    if isinstance(class_set, (str, bytes, Mapping)) or not isinstance(class_set, Iterable):
        raise TypeError(
            f"{where}: classes is a {type(class_set).__name__}; pass a list of "
            '{"id": int, "name": str}, e.g. [{"id": 1, "name": "cat"}]'
        )
    out = []
    for i, item in enumerate(class_set):
        if not isinstance(item, Mapping) or set(item) - {"id", "name"} or "id" not in item:
            raise ValueError(
                f"{where}: classes[{i}] is {item!r}; each class is "
                '{"id": int, "name": str}, e.g. {"id": 1, "name": "cat"}'
            )
        cid = _class_id(f"{where}: classes[{i}]['id']", item["id"])
        name = item.get("name", f"class_{cid}")
        out.append({"id": cid, "name": _name(f"{where}: classes[{i}]['name']", name)})
    return out


def _class_id(where: str, value: Any) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{where} is {value!r} ({type(value).__name__}); class ids are ints")
    cid = int(value)
    if not -(1 << 63) <= cid < (1 << 63):
        raise ValueError(f"{where} is {cid}; class ids must fit in int64")
    return cid


def _name(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where} is a {type(value).__name__}; pass a str")
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"{where} {problem}")
    return str(value)


def check_labels(where: str, labels: Any) -> dict[int, str]:
    """``class_labels`` as id -> name, or a clear error."""
    if not isinstance(labels, Mapping):
        raise TypeError(
            f"{where} is a {type(labels).__name__}; pass a dict of class id -> name, "
            'e.g. {1: "cat", 2: "dog"}'
        )
    out = {}
    for k, v in labels.items():
        cid = int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k
        out[_class_id(f"{where} key {k!r}", cid)] = _name(f"{where}[{k!r}]", v)
    return out


def wire_labels(labels: Mapping[int, str]) -> dict[str, str]:
    """Class labels as stored: str keys (msgpack maps from JSON readers need them)."""
    return {str(k): v for k, v in sorted(labels.items())}


# -- boxes ------------------------------------------------------------------------------
def check_boxes(boxes: Any, size: tuple[int, int]) -> tuple[dict[str, Any], dict[int, str]]:
    """Box groups as stored, and every class label they name; ``size`` is (height, width)."""
    if not isinstance(boxes, Mapping):
        raise TypeError(
            f"Image(): boxes is a {type(boxes).__name__}; pass a dict of group name -> "
            '{"box_data": [...], "class_labels": {...}}, e.g. {"predictions": {...}}'
        )
    out: dict[str, Any] = {}
    labels: dict[int, str] = {}
    for group, spec in boxes.items():
        where = f"Image(): boxes[{group!r}]"
        if not isinstance(group, str):
            raise TypeError(f"{where}: group names are str, e.g. 'predictions'")
        if not isinstance(spec, Mapping) or "box_data" not in spec:
            raise ValueError(
                f'{where} is {type(spec).__name__}; pass {{"box_data": [box, ...], '
                '"class_labels": {id: name}}'
            )
        data = spec["box_data"]
        if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable):
            raise TypeError(f"{where}['box_data'] is a {type(data).__name__}; pass a list")
        given = spec.get("class_labels")
        group_labels = None if given is None else check_labels(f"{where}['class_labels']", given)
        stored = [_check_box(f"{where}['box_data'][{i}]", b) for i, b in enumerate(data)]
        if group_labels is None:
            group_labels = {b["class_id"]: f"class_{b['class_id']}" for b in stored}
        for i, b in enumerate(stored):
            if b["class_id"] not in group_labels:
                raise ValueError(
                    f"{where}['box_data'][{i}]: class_id {b['class_id']} is not in "
                    f"class_labels (ids {sorted(group_labels)}); add it to class_labels"
                )
        out[group] = {"box_data": stored, "class_labels": wire_labels(group_labels)}
        labels.update(group_labels)
    return out, labels


def _check_box(where: str, box: Any) -> dict[str, Any]:
    if not isinstance(box, Mapping):
        raise TypeError(f"{where} is a {type(box).__name__}; each box is a dict")
    unknown = set(box) - _BOX_KEYS
    if unknown:
        raise ValueError(
            f"{where} has unknown key(s) {sorted(map(str, unknown))}; a box has {sorted(_BOX_KEYS)}"
        )
    domain = box.get("domain")
    if domain not in (None, "pixel"):
        raise ValueError(
            f"{where}: domain {domain!r} is not 'pixel'; leave it out for relative (0-1) "
            "coordinates"
        )
    if "class_id" not in box:
        raise ValueError(f"{where} has no class_id; give each box an int class_id")
    out: dict[str, Any] = {
        "position": _check_position(where, box.get("position"), domain),
        "class_id": _class_id(f"{where}['class_id']", box["class_id"]),
    }
    if domain is not None:
        out["domain"] = domain
    if box.get("box_caption") is not None:
        out["box_caption"] = _name(f"{where}['box_caption']", box["box_caption"])
    if box.get("scores") is not None:
        out["scores"] = _check_scores(f"{where}['scores']", box["scores"])
    return out


def _number(where: str, value: Any) -> float | int:
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where} is {value!r} ({type(value).__name__}); pass a number")
    if not math.isfinite(value):
        raise ValueError(f"{where} is {value}; box coordinates must be finite numbers")
    return int(value) if isinstance(value, int) else float(value)


def _check_position(where: str, pos: Any, domain: str | None) -> dict[str, Any]:
    if not isinstance(pos, Mapping):
        raise ValueError(f"{where} has no position dict; {_FORMS}")
    keys = set(pos)
    if keys == set(_CORNERS):
        out: dict[str, Any] = {k: _number(f"{where}['position'][{k!r}]", pos[k]) for k in _CORNERS}
        for lo, hi in (("minX", "maxX"), ("minY", "maxY")):
            if out[lo] > out[hi]:
                raise ValueError(f"{where}: {lo} {out[lo]} is above {hi} {out[hi]}; swap them")
        values = list(out.values())
    elif keys == set(_MIDDLE):
        middle = pos["middle"]
        if isinstance(middle, (str, bytes)) or not hasattr(middle, "__len__") or len(middle) != 2:
            raise ValueError(f"{where}: position['middle'] is {middle!r}; pass [x, y]")
        mid = [_number(f"{where}['position']['middle'][{i}]", m) for i, m in enumerate(middle)]
        out = {"middle": mid}
        for k in ("width", "height"):
            out[k] = _number(f"{where}['position'][{k!r}]", pos[k])
            if out[k] < 0:
                raise ValueError(f"{where}: {k} is {out[k]}; a box's size is not negative")
        values = [*mid, out["width"], out["height"]]
    else:
        raise ValueError(f"{where}: position has keys {sorted(map(str, keys))}; {_FORMS}")
    if domain is None and not all(0 <= v <= 1 for v in values):
        raise ValueError(
            f"{where}: position {out} is outside 0-1, the range of relative coordinates; "
            'pass fractions of the image size, or add "domain": "pixel" for pixels'
        )
    return out


_FORMS = 'a position is {"minX", "maxX", "minY", "maxY"} or {"middle": [x, y], "width", "height"}'


def _check_scores(where: str, scores: Any) -> dict[str, Any]:
    if not isinstance(scores, Mapping):
        raise TypeError(f"{where} is a {type(scores).__name__}; pass a dict of name -> number")
    return {_name(f"{where} key", k): _number(f"{where}[{k!r}]", v) for k, v in scores.items()}


# -- masks ------------------------------------------------------------------------------
def check_masks(masks: Any, size: tuple[int, int]) -> tuple[dict[str, Any], dict[int, str]]:
    """Mask groups as stored, and every class label they name; ``size`` is (height, width)."""
    if not isinstance(masks, Mapping):
        raise TypeError(
            f"Image(): masks is a {type(masks).__name__}; pass a dict of group name -> "
            '{"mask_data": array, "class_labels": {...}}, e.g. {"ground_truth": {...}}'
        )
    out: dict[str, Any] = {}
    labels: dict[int, str] = {}
    for group, spec in masks.items():
        where = f"Image(): masks[{group!r}]"
        if not isinstance(group, str):
            raise TypeError(f"{where}: group names are str, e.g. 'ground_truth'")
        if not isinstance(spec, Mapping) or ("mask_data" in spec) == ("path" in spec):
            raise ValueError(
                f'{where}: pass {{"mask_data": 2-D integer array}} or {{"path": "mask.png"}}, '
                'with "class_labels": {id: name}'
            )
        if "path" in spec:
            pixels = _mask_from_path(f"{where}['path']", spec["path"])
        else:
            pixels = _mask_array(f"{where}['mask_data']", spec["mask_data"])
        if pixels.shape != size:
            raise ValueError(
                f"{where}: the mask has shape {tuple(pixels.shape)} and the image is "
                f"{size[0]}x{size[1]} (height x width); pass a mask of shape {size}"
            )
        given = spec.get("class_labels")
        if given is None:
            group_labels = {int(i): f"class_{int(i)}" for i in _ids_used(pixels)}
        else:
            group_labels = check_labels(f"{where}['class_labels']", given)
        out[group] = {
            "pixels": pixels.data.cast("B") if pixels.flags.c_contiguous else pixels.tobytes(),
            "shape": list(size),
            "class_labels": wire_labels(group_labels),
        }
        labels.update(group_labels)
    return out, labels


def _ids_used(pixels: Any) -> Any:
    import numpy as np

    return np.flatnonzero(np.bincount(pixels.reshape(-1), minlength=256))


def _mask_array(where: str, data: Any) -> Any:
    import numpy as np

    if type(data).__module__.startswith("torch"):
        data = data.detach().cpu().numpy()
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise ValueError(
            f"{where} has shape {tuple(arr.shape)}; a mask is 2-D (height x width), one "
            "class id per pixel"
        )
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{where} has dtype {arr.dtype}; a mask holds integer class ids 0-255: pass "
            "mask.astype(np.uint8)"
        )
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"{where} holds values {arr.min()}..{arr.max()}; mask class ids are 0-255")
    return arr.astype(np.uint8)


def _mask_from_path(where: str, path: Any) -> Any:
    import numpy as np
    from PIL import Image as PILImage

    try:
        with PILImage.open(os.fspath(path)) as img:
            if img.mode not in ("L", "P", "1"):
                raise ValueError(
                    f"{where}: {os.fspath(path)!r} is a {img.mode} image; a mask file is a "
                    "one-channel (L or P mode) PNG of class ids"
                )
            return np.asarray(img).astype(np.uint8)  # mode "1" reads as bool: ids 0 and 1
    except OSError as exc:
        raise ValueError(
            f"{where}: cannot read {os.fspath(path)!r} as an image ({exc}); pass the path of "
            "a PNG of class ids"
        ) from exc
