"""Boxes, masks and classes on a trackd.Image: both position forms and domains, several
groups, masks from arrays and PNG files, and each bad input's message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trackd
from PIL import Image as PILImage

from ._rich import logged, mask

IMG = np.zeros((20, 30, 3), dtype=np.uint8)  # 20 high, 30 wide
CORNERS = {"minX": 0.1, "maxX": 0.4, "minY": 0.2, "maxY": 0.5}


def _boxes(*boxes: dict[str, Any], labels: dict[Any, str] | None = None) -> dict[str, Any]:
    group: dict[str, Any] = {"box_data": list(boxes)}
    if labels is not None:
        group["class_labels"] = labels
    return {"predictions": group}


def test_boxes_in_both_forms_and_domains_and_several_groups() -> None:
    boxes = {
        "predictions": {
            "box_data": [
                {"position": CORNERS, "class_id": 1, "box_caption": "cat", "scores": {"p": 0.9}},
                {
                    "position": {"middle": [15, 10], "width": 8, "height": np.float32(4)},
                    "domain": "pixel",
                    "class_id": 2,
                },
            ],
            "class_labels": {1: "cat", 2: "dog"},
        },
        "truth": {"box_data": [{"position": CORNERS, "class_id": np.int64(7)}]},
    }
    raw = logged(trackd.Image(IMG, boxes=boxes))
    pred = raw["boxes"]["predictions"]
    assert pred["class_labels"] == {"1": "cat", "2": "dog"}
    assert pred["box_data"][0] == {
        "position": CORNERS,
        "class_id": 1,
        "box_caption": "cat",
        "scores": {"p": 0.9},
    }
    assert pred["box_data"][1] == {
        "position": {"middle": [15, 10], "width": 8, "height": 4.0},
        "domain": "pixel",
        "class_id": 2,
    }
    assert raw["boxes"]["truth"]["class_labels"] == {"7": "class_7"}  # wandb's default names
    assert raw["classes"] == [
        {"id": 1, "name": "cat"},
        {"id": 2, "name": "dog"},
        {"id": 7, "name": "class_7"},
    ]


def test_masks_from_arrays_and_png_files(tmp_path: Path) -> None:
    truth = np.random.default_rng(1).integers(0, 4, size=(20, 30)).astype(np.int64)
    pred = (truth == 2).astype(np.uint8)[:, ::-1]  # a non-contiguous view
    path = tmp_path / "mask.png"
    PILImage.fromarray(truth.astype(np.uint8), mode="L").save(path)
    masks = {
        "truth": {"mask_data": truth, "class_labels": {0: "bg", 1: "a", 2: "b", 3: "c"}},
        "pred": {"mask_data": pred},
        "file": {"path": str(path), "class_labels": {"2": "b"}},
    }
    raw = logged(trackd.Image(IMG, masks=masks, classes=trackd.Classes([{"id": 9, "name": "z"}])))
    got = raw["masks"]
    assert np.array_equal(mask(got["truth"]), truth) and got["truth"]["shape"] == [20, 30]
    assert np.array_equal(mask(got["pred"]), pred)
    assert got["pred"]["class_labels"] == {"0": "class_0", "1": "class_1"}
    assert np.array_equal(mask(got["file"]), truth)
    assert got["file"]["class_labels"] == {"2": "b"}
    assert {c["id"] for c in raw["classes"]} == {0, 1, 2, 3, 9}


def test_masks_on_a_tensor_grid_and_an_image_file(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    raw = logged(
        trackd.Image(torch.rand(1, 3, 6, 5), masks={"m": {"mask_data": torch.ones(6, 5).long()}})
    )
    assert mask(raw["masks"]["m"]).tolist() == [[1] * 5] * 6
    path = tmp_path / "pic.png"
    PILImage.fromarray(IMG).save(path)
    raw = logged(trackd.Image(path, masks={"m": {"mask_data": np.zeros((20, 30), np.uint8)}}))
    assert raw["masks"]["m"]["shape"] == [20, 30]


@pytest.mark.parametrize(
    ("boxes", "error", "pattern"),
    [
        (
            _boxes({"position": CORNERS, "class_id": 3}, labels={1: "cat"}),
            ValueError,
            r"\['box_data'\]\[0\]: class_id 3 is not in class_labels \(ids \[1\]\)",
        ),
        (
            _boxes({"position": {**CORNERS, "minX": "0.1"}, "class_id": 1}),
            TypeError,
            r"\['position'\]\['minX'\] is '0.1' \(str\); pass a number",
        ),
        (
            _boxes({"position": {**CORNERS, "maxY": 1.5}, "class_id": 1}),
            ValueError,
            r"is outside 0-1, the range of relative coordinates.*\"domain\": \"pixel\"",
        ),
        (
            _boxes({"position": {"x": 1, "y": 2}, "class_id": 1}),
            ValueError,
            r"position has keys \['x', 'y'\]; a position is \{\"minX\"",
        ),
        (
            _boxes({"position": {**CORNERS, "minX": 0.9}, "class_id": 1}),
            ValueError,
            r"minX 0.9 is above maxX 0.4; swap them",
        ),
        (
            _boxes({"position": CORNERS, "class_id": 1, "domain": "percent"}),
            ValueError,
            r"domain 'percent' is not 'pixel'",
        ),
        (_boxes({"position": CORNERS}), ValueError, r"has no class_id"),
        (
            _boxes({"position": CORNERS, "class_id": 1, "label": "x"}),
            ValueError,
            r"unknown key\(s\) \['label'\]",
        ),
        (
            _boxes({"position": {"middle": [0.5], "width": 0.1, "height": 0.1}, "class_id": 1}),
            ValueError,
            r"position\['middle'\] is \[0.5\]; pass \[x, y\]",
        ),
        (
            _boxes({"position": {**CORNERS, "maxX": float("nan")}, "class_id": 1}),
            ValueError,
            r"is nan; box coordinates must be finite",
        ),
        ({"p": [1, 2]}, ValueError, r"boxes\['p'\] is list; pass \{\"box_data\""),
        ([1], TypeError, r"boxes is a list; pass a dict of group name"),
    ],
)
def test_bad_boxes_are_refused(boxes: Any, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        trackd.Image(IMG, boxes=boxes)


@pytest.mark.parametrize(
    ("masks", "error", "pattern"),
    [
        (
            {"m": {"mask_data": np.zeros((30, 20), np.uint8)}},
            ValueError,
            r"masks\['m'\]: the mask has shape \(30, 20\) and the image is 20x30 \(height x "
            r"width\); pass a mask of shape \(20, 30\)",
        ),
        (
            {"m": {"mask_data": np.zeros((20, 30, 1), np.uint8)}},
            ValueError,
            r"has shape \(20, 30, 1\); a mask is 2-D",
        ),
        (
            {"m": {"mask_data": np.zeros((20, 30), np.float32)}},
            TypeError,
            r"dtype float32; a mask holds integer class ids 0-255",
        ),
        (
            {"m": {"mask_data": np.full((20, 30), 300)}},
            ValueError,
            r"holds values 300..300; mask class ids are 0-255",
        ),
        ({"m": {"class_labels": {}}}, ValueError, r"pass \{\"mask_data\": 2-D integer array\}"),
        (
            {"m": {"mask_data": np.zeros((20, 30), np.uint8), "class_labels": {"x": "a"}}},
            TypeError,
            r"class_labels'\] key 'x' is 'x' \(str\); class ids are ints",
        ),
        (
            {"m": {"path": "/no/such/mask.png"}},
            ValueError,
            r"cannot read '/no/such/mask.png' as an image",
        ),
    ],
)
def test_bad_masks_are_refused(masks: Any, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        trackd.Image(IMG, masks=masks)


def test_an_rgb_png_is_not_a_mask(tmp_path: Path) -> None:
    path = tmp_path / "rgb.png"
    PILImage.fromarray(IMG).save(path)
    with pytest.raises(ValueError, match=r"is a RGB image; a mask file is a one-channel"):
        trackd.Image(IMG, masks={"m": {"path": path}})


def test_bad_classes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"classes\[0\] is \{'name': 'x'\}; each class is"):
        trackd.Classes([{"name": "x"}])
    with pytest.raises(TypeError, match=r"classes\[0\]\['name'\] is a int; pass a str"):
        trackd.Image(IMG, classes=[{"id": 1, "name": 5}])
    with pytest.raises(TypeError, match=r"classes is a str; pass a list"):
        trackd.Image(IMG, classes="cat")  # type: ignore[arg-type]
    assert trackd.Classes([{"id": 1, "name": "a"}]) == trackd.Classes([{"id": 1, "name": "a"}])
