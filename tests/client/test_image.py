"""trackd.Image: every input form, wandb's value-range rules, and each bad input's message;
read back from the run log the real daemon wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trackd
from PIL import Image as PILImage

from ._rich import logged, logged_row, pixels

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(7)


def test_uint8_rgb_array_reads_back_exactly() -> None:
    arr = RNG.integers(0, 256, size=(32, 24, 3), dtype=np.uint8)
    raw = logged(trackd.Image(arr, caption="rgb", grouping=2))
    assert raw["_type"] == "image" and raw["mode"] == "RGB" and raw["shape"] == [32, 24, 3]
    assert raw["caption"] == "rgb" and raw["grouping"] == 2
    assert np.array_equal(pixels(raw), arr)


@pytest.mark.parametrize(
    ("shape", "mode"), [((9, 7), "L"), ((9, 7, 1), "L"), ((9, 7, 4), "RGBA"), ((1, 9, 7, 3), "RGB")]
)
def test_array_shapes_and_modes(shape: tuple[int, ...], mode: str) -> None:
    arr = RNG.integers(2, 256, size=shape, dtype=np.uint8)
    raw = logged(trackd.Image(arr))
    assert raw["mode"] == mode
    assert np.array_equal(pixels(raw), arr.squeeze())


def test_non_contiguous_uint8_is_taken_as_shown() -> None:
    arr = RNG.integers(2, 256, size=(10, 12, 3), dtype=np.uint8)[:, ::2]
    assert np.array_equal(pixels(logged(trackd.Image(arr))), arr)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[0.0, 0.5, 1.0]], [[0, 127, 255]]),  # floats in 0-1: * 255, truncated
        ([[-1.0, 0.0, 1.0]], [[0, 127, 255]]),  # a negative minimum: rescaled to 0-1 first
        ([[0.0, 2.0, 300.0]], [[0, 2, 255]]),  # over 1: taken as 0-255, clipped
        ([[0, 128, 300]], [[0, 128, 255]]),  # ints: clipped
        ([[-5, 0, 5]], [[0, 127, 255]]),  # negative ints: rescaled
        ([[0, 1, 1]], [[0, 255, 255]]),  # ints of at most 1 (even uint8): * 255, as wandb
        ([[True, False, True]], [[255, 0, 255]]),
    ],
)
def test_array_value_ranges_follow_wandb(values: list[list[float]], expected: list[int]) -> None:
    raw = logged(trackd.Image(np.array(values)))
    assert pixels(raw).tolist() == expected
    u8 = np.array(values).astype(np.uint8)
    if np.array_equal(u8, np.array(values)) and u8.max() <= 1:  # the same rule for uint8
        assert pixels(logged(trackd.Image(u8))).tolist() == expected


def test_nan_and_inf_in_floats_do_not_crash() -> None:
    raw = logged(trackd.Image(np.array([[np.nan, 0.0, 0.5, 1.0, np.inf, -np.inf]])))
    assert pixels(raw).tolist() == [[0, 0, 127, 255, 255, 0]]  # NaN 0, inf the finite extremes


def test_pil_images_in_any_mode() -> None:
    arr = RNG.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    rgb = PILImage.fromarray(arr)
    assert np.array_equal(pixels(logged(trackd.Image(rgb))), arr)
    rgba = rgb.convert("RGBA")
    assert logged(trackd.Image(rgba))["mode"] == "RGBA"
    pal = rgb.convert("P")
    raw = logged(trackd.Image(pal))
    assert raw["mode"] == "RGB" and np.array_equal(pixels(raw), np.asarray(pal.convert("RGB")))
    gray = logged(trackd.Image(rgb, mode="L"))
    assert gray["mode"] == "L" and np.array_equal(pixels(gray), np.asarray(rgb.convert("L")))


def test_mode_converts_array_pixels() -> None:
    arr = RNG.integers(0, 256, size=(4, 4), dtype=np.uint8)
    raw = logged(trackd.Image(arr, mode="RGB"))
    assert raw["mode"] == "RGB" and np.array_equal(pixels(raw)[:, :, 1], arr)


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", ".png"), ("JPEG", ".jpg"), ("GIF", ".gif")])
def test_image_file_keeps_its_bytes(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = tmp_path / f"pic{suffix}"
    PILImage.fromarray(RNG.integers(0, 256, size=(13, 17, 3), dtype=np.uint8)).save(path, fmt)
    raw = logged(trackd.Image(str(path), caption="file"))
    assert raw["file"] == path.read_bytes() and raw["format"] == fmt.lower()
    assert (raw["width"], raw["height"], raw["caption"]) == (17, 13, "file")
    assert logged(trackd.Image(path))["file"] == path.read_bytes()  # a Path works too


def test_image_of_an_image_takes_pixels_and_new_caption() -> None:
    arr = RNG.integers(0, 256, size=(3, 3, 3), dtype=np.uint8)
    raw = logged(trackd.Image(trackd.Image(arr, caption="old"), caption="new"))
    assert raw["caption"] == "new" and np.array_equal(pixels(raw), arr)


# -- torch tensors: make_grid(normalize=True) * 255 -------------------------------------
def _normalised(values: np.ndarray) -> np.ndarray:
    """torchvision's normalisation then wandb's * 255, in float32 as torch computes it."""
    v = values.astype(np.float32)
    low, high = float(v.min()), float(v.max())
    out = (v - np.float32(low)) / np.float32(max(high - low, 1e-5)) * np.float32(255)
    return np.clip(out, 0, 255).astype(np.uint8)


def test_chw_tensor_is_normalised_by_its_min_and_max() -> None:
    values = RNG.uniform(0.2, 0.6, size=(3, 5, 4)).astype(np.float32)
    raw = logged(trackd.Image(torch.from_numpy(values)))
    assert raw["mode"] == "RGB" and raw["shape"] == [5, 4, 3]
    assert np.array_equal(pixels(raw), _normalised(values).transpose(1, 2, 0))
    assert pixels(raw).min() == 0 and pixels(raw).max() == 255


def test_hw_and_integer_and_half_tensors() -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    expected = _normalised(values)
    for t in (torch.from_numpy(values), torch.arange(12).reshape(3, 4)):
        raw = logged(trackd.Image(t))
        assert raw["mode"] == "L" and np.array_equal(pixels(raw), expected)
    half = logged(trackd.Image(torch.from_numpy(values).half().requires_grad_()))
    assert half["shape"] == [3, 4, 1]


def test_batch_is_laid_out_as_a_grid_with_padding() -> None:
    values = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 1, 2, 2)
    raw = logged(trackd.Image(torch.from_numpy(values)))
    grid = pixels(raw)  # 1 row of 3 cells: (2 + 2) * 1 + 2 high, (2 + 2) * 3 + 2 wide
    assert grid.shape == (6, 14)
    norm = _normalised(values)
    expected = np.zeros((6, 14), dtype=np.uint8)
    for k in range(3):
        expected[2:4, 2 + 4 * k : 4 + 4 * k] = norm[k, 0]
    assert np.array_equal(grid, expected)


def test_batch_of_nine_makes_two_rows_of_eight() -> None:
    batch = torch.rand(9, 3, 5, 6)
    raw = logged(trackd.Image(batch))
    assert raw["shape"] == [2 * 7 + 2, 8 * 8 + 2, 3]
    grid = pixels(raw)
    assert not grid[9:14, 10:16].any()  # cell (1, 1) is blank: only 9 images
    assert grid[2:7, 2:8].any()


def test_tutorial_tensors_log_nested_and_as_lists() -> None:
    images = torch.rand(4, 3, 8, 8)
    targets = (torch.rand(4, 1, 8, 8) > 0.5).float()
    row = logged_row(
        {
            "images": trackd.Image(images.float()),
            "masks": {"true": trackd.Image(targets.float()), "pred": trackd.Image(targets)},
            "examples": [trackd.Image(images[i]) for i in range(3)],
        }
    )
    assert row["images"]["shape"] == [12, 42, 3]
    assert row["masks.true"]["mode"] == "L" and row["masks.pred"]["shape"] == [12, 42, 1]
    examples = row["examples"]
    assert examples["_type"] == "images" and len(examples["items"]) == 3
    assert np.array_equal(
        pixels(examples["items"][1]), _normalised(images[1].numpy()).transpose(1, 2, 0)
    )


# -- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "error", "pattern"),
    [
        (np.zeros((4, 4, 2)), ValueError, r"numpy array of shape \(4, 4, 2\) is not an image"),
        (np.zeros((3, 8, 8)), ValueError, r"channels first\? pass arr.transpose\(1, 2, 0\)"),
        (np.zeros((2, 2, 2, 2, 3)), ValueError, r"pass HxW, HxWx1, HxWx3 or HxWx4"),
        (np.zeros((0, 4)), ValueError, r"shape \(0, 4\) is not an image"),
        (np.array([["a"]]), TypeError, r"dtype <U1; pass a numeric numpy array"),
        (object(), TypeError, r"dtype object; pass a numeric numpy array, a PIL image"),
        ("/no/such/file.png", FileNotFoundError, r"no file at '/no/such/file.png'"),
    ],
)
def test_bad_data_is_refused(data: object, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        trackd.Image(data)


def test_bad_tensors_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(8, 8, 3\) is not an image.*channels last"):
        trackd.Image(torch.zeros(8, 8, 3))
    with pytest.raises(ValueError, match=r"shape \(2, 2, 2, 2, 2\) is not an image"):
        trackd.Image(torch.zeros(2, 2, 2, 2, 2))
    with pytest.raises(ValueError, match=r"holds no pixels"):
        trackd.Image(torch.zeros(3, 0, 4))


def test_not_an_image_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match=r"notes.txt' is not an image file PIL can read"):
        trackd.Image(path)


def test_bad_caption_grouping_and_mode() -> None:
    arr = np.zeros((2, 2), dtype=np.uint8)
    with pytest.raises(TypeError, match=r"caption is not a str \(int\); pass a str"):
        trackd.Image(arr, caption=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"grouping is True; pass an int"):
        trackd.Image(arr, grouping=True)
    with pytest.raises(ValueError, match=r"cannot convert L pixels to mode 'XYZ'"):
        trackd.Image(arr, mode="XYZ")


def test_a_list_mixing_images_and_numbers_is_refused() -> None:
    run = trackd.init(project="p")
    with pytest.raises(TypeError, match=r"key 'x' is a list of Image and int; a list of images"):
        run.log({"x": [trackd.Image(np.zeros((2, 2))), 3]})
    run.finish()


def test_summary_holds_a_small_description_not_the_pixels() -> None:
    run = trackd.init(project="p")
    arr = np.zeros((5, 7, 3), dtype=np.uint8)
    run.log({"img": trackd.Image(arr, caption="c"), "imgs": [trackd.Image(arr)] * 2})
    expected = {"_type": "image", "width": 7, "height": 5, "caption": "c"}
    assert run.summary["img"] == expected
    assert run.summary["imgs"] == {"_type": "images", "count": 2}
    with pytest.raises(TypeError, match=r"summary: value for key 'img' is a image with pixels"):
        run.summary["img"] = trackd.Image(arr)
    run.finish()
    assert trackd.read_run(run.dir).summary["img"] == expected


def test_image_rows_are_history_media_records_and_plain_rows_are_not() -> None:
    from trackd._reader import read_records
    from trackd._wire import records as p

    run = trackd.init(project="p")
    run.log({"loss": 1.0})
    run.log({"img": trackd.Image(np.zeros((2, 2)))}, commit=False)
    run.log({"loss": 0.5})  # commits the open row that holds the image
    run.log({"h": np.arange(40.0)})
    run.finish()
    records, _ = read_records(run.dir)
    rows = [r for r in records if r.kind in (p.HISTORY, p.HISTORY_MEDIA)]
    assert [r.kind for r in rows] == [p.HISTORY, p.HISTORY_MEDIA, p.HISTORY]
    assert rows[1].data["loss"] == 0.5 and rows[1].step == 1


def test_image_rows_follow_the_step_rules() -> None:
    run = trackd.init(project="p")
    img = trackd.Image(np.full((2, 2), 7, dtype=np.uint8))
    run.log({"img": img}, step=3)  # opens step 3
    run.log({"loss": 1.0}, step=3)  # merged into it
    run.log({"x": 1}, step=4)  # commits step 3
    run.log({"img": img, "y": 2}, commit=True)  # step 4, committed now
    run.finish()
    rows = trackd.read_run(run.dir).history
    assert [(r["_step"], sorted(k for k in r if not k.startswith("_"))) for r in rows] == [
        (3, ["img", "loss"]),
        (4, ["img", "x", "y"]),
    ]
    assert pixels(rows[1]["img"]).tolist() == [[7, 7], [7, 7]]


def test_uint8_pixels_are_not_copied_before_logging() -> None:
    arr = np.zeros((4, 4, 3), dtype=np.uint8)
    arr[0, 0, 0] = 9  # max over 1: no scaling, so no conversion
    view = trackd.Image(arr)._raw("k")["pixels"]
    assert isinstance(view, memoryview) and view.obj is arr


def test_an_image_over_the_record_limit_is_refused_and_nothing_is_lost() -> None:
    run = trackd.init(project="p")
    run.log({"a": 1})
    big = trackd.Image(np.full((1700, 1700, 3), 9, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"the row of step 1 is \d+ bytes once encoded; one"):
        run.log({"img": big})
    run.log({"img": trackd.Image(np.full((8, 8, 3), 9, dtype=np.uint8))})
    run.finish()
    rows = trackd.read_run(run.dir).history
    assert [r["_step"] for r in rows] == [0, 1] and rows[1]["img"]["shape"] == [8, 8, 3]


def test_a_large_image_reads_back_exactly() -> None:
    arr = RNG.integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)  # 3 MiB of pixels
    run = trackd.init(project="p")
    for i in range(3):
        run.log({"img": trackd.Image(arr), "i": i})
    run.finish()
    rows = trackd.read_run(run.dir).history
    assert [r["i"] for r in rows] == [0, 1, 2]
    assert all(np.array_equal(pixels(r["img"]), arr) for r in rows)


def test_uint8_scaling_looks_past_the_first_rows() -> None:
    # Image() checks the first rows for a byte over 1 before scanning the whole picture:
    # a picture dark at the top and bright below must not be taken for a 0/1 mask
    arr = np.zeros((40, 30), dtype=np.uint8)
    arr[:8] = 1
    arr[-1, -1] = 200
    assert pixels(logged(trackd.Image(arr))).tolist() == arr.tolist()
    mask = np.zeros((40, 30), dtype=np.uint8)
    mask[-1, -1] = 1
    assert pixels(logged(trackd.Image(mask)))[-1, -1] == 255
