"""The rich-value contract's checks that both the client and the daemon rely on."""

from __future__ import annotations

from trackd._wire.media import is_raw, row_has_raw

RAW = {"_type": "image", "pixels": b"\x00" * 3, "shape": [1, 1, 3], "mode": "RGB"}
FILE_REF = {"_type": "image-file", "sha256": "ab" * 32, "size": 3, "format": "png"}


def test_a_list_of_raw_images_makes_a_media_row() -> None:
    assert row_has_raw({"examples": [RAW, RAW]})
    assert row_has_raw({"t": {"_type": "table", "columns": ["a"], "data": [[RAW]]}})
    assert is_raw([1.0, RAW])


def test_rows_without_raw_media_are_plain() -> None:
    assert not row_has_raw({"loss": 1.0, "xs": [1.0, 2.0], "img": FILE_REF, "many": [FILE_REF]})
    assert not is_raw({"_type": "histogram", "bins": [0.0, 1.0], "values": [1]})
