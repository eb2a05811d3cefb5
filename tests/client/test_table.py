"""trackd.Table: rows of plain cells and images, from lists and DataFrames, read back from
the run log; ragged rows and cells of other types are refused with their position."""

from __future__ import annotations

import numpy as np
import pytest
import trackd

from ._rich import logged, pixels


def test_table_with_image_cells_reads_back() -> None:
    arr = np.random.default_rng(0).integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    table = trackd.Table(columns=["id", "image", "label", "score", "ok", "note"])
    table.add_data(0, trackd.Image(arr), "cat", 0.5, True, None)
    table.add_data(np.int64(1), None, "dog", np.float32(0.25), False, "x")
    raw = logged(table)
    assert raw["_type"] == "table"
    assert raw["columns"] == ["id", "image", "label", "score", "ok", "note"]
    assert raw["data"][1] == [1, None, "dog", 0.25, False, "x"]
    assert np.array_equal(pixels(raw["data"][0][1]), arr)


def test_table_from_rows_and_from_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    assert logged(trackd.Table(data=[[1, "a"], [2, "b"]]))["columns"] == ["Column_1", "Column_2"]
    frame = pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5], "name": ["a", "b"]})
    raw = logged(trackd.Table(dataframe=frame))
    assert raw["columns"] == ["x", "y", "name"]
    assert raw["data"] == [[1, 0.5, "a"], [2, 1.5, "b"]]
    assert trackd.Table().columns == ["Input", "Output", "Expected"]  # wandb's default


def test_a_table_without_images_is_a_plain_history_row() -> None:
    from trackd._reader import read_records
    from trackd._wire import records as p

    run = trackd.init(project="p")
    run.log({"t": trackd.Table(columns=["a"], data=[[1]])})
    run.finish()
    kinds = [r.kind for r in read_records(run.dir)[0]]
    assert p.HISTORY in kinds and p.HISTORY_MEDIA not in kinds


def test_bad_tables_are_refused() -> None:
    table = trackd.Table(columns=["a", "b"])
    with pytest.raises(ValueError, match=r"row 0 has 1 cell\(s\) and the table has 2 column"):
        table.add_data(1)
    with pytest.raises(TypeError, match=r"Table: row 0, column 'b' is a list; table cells are"):
        table.add_data(1, [1, 2])
    with pytest.raises(TypeError, match=r"Table: row 1, column 'a' is a dict"):
        trackd.Table(columns=["a"], data=[[1], [{}]])
    with pytest.raises(TypeError, match=r"column name 3 \(int\) is not a str"):
        trackd.Table(columns=["a", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"repeat a name"):
        trackd.Table(columns=["a", "a"])
    with pytest.raises(ValueError, match=r"does not fit in int64"):
        table.add_data(2**64, 1)
