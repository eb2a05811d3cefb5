"""``trackd.Table``: rows of numbers, strings, bools, None and images, logged under a key."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ._image import Image
from ._wire import media
from ._wire.limits import INT64_MAX, INT64_MIN, text_problem

_DEFAULT_COLUMNS = ["Input", "Output", "Expected"]  # wandb's, for a Table() with no data


class Table:
    """A table to log: ``columns`` names the columns; ``data`` is a list of rows, or
    ``dataframe`` a pandas DataFrame; :meth:`add_data` appends a row. Cells are None, bools,
    numbers, strings and :class:`trackd.Image`.

    Example::

        table = trackd.Table(columns=["id", "image", "label"])
        table.add_data(0, trackd.Image(pixels), "cat")
        trackd.log({"samples": table})
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        data: Iterable[Sequence[Any]] | None = None,
        dataframe: Any = None,
    ) -> None:
        if dataframe is not None:
            if data is not None:
                raise ValueError("Table(): pass data or dataframe, not both")
            if columns is None:
                columns = [str(c) for c in dataframe.columns]
            data = dataframe.itertuples(index=False, name=None)
        rows = [] if data is None else list(data)
        if columns is None:
            columns = [f"Column_{i + 1}" for i in range(len(rows[0]))] if rows else _DEFAULT_COLUMNS
        self.columns = _check_columns(columns)
        self.data: list[list[Any]] = []
        for row in rows:
            self.add_data(*row)

    def add_data(self, *row: Any) -> None:
        """Append one row: one cell per column."""
        if len(row) != len(self.columns):
            raise ValueError(
                f"Table.add_data(): row {len(self.data)} has {len(row)} cell(s) and the table "
                f"has {len(self.columns)} column(s) {self.columns}; pass one value per column"
            )
        where = f"Table: row {len(self.data)}"
        self.data.append(
            [_cell(f"{where}, column {c!r}", v) for c, v in zip(self.columns, row, strict=True)]
        )

    def _raw(self, key: str) -> dict[str, Any]:
        return {media.TYPE: media.TABLE, "columns": list(self.columns), "data": self.data}

    def __repr__(self) -> str:
        return f"<trackd.Table {len(self.data)} rows x {len(self.columns)} columns>"


def _check_columns(columns: Any) -> list[str]:
    if isinstance(columns, (str, bytes)) or not isinstance(columns, Iterable):
        raise TypeError(
            f"Table(): columns is a {type(columns).__name__}; pass a list of str, "
            "e.g. ['id', 'image']"
        )
    out = []
    for c in columns:
        if not isinstance(c, str) or text_problem(c):
            raise TypeError(f"Table(): column name {c!r} ({type(c).__name__}) is not a str")
        out.append(c)
    if len(set(out)) != len(out):
        raise ValueError(f"Table(): column names {out} repeat a name; give each its own")
    return out


def _cell(where: str, v: Any) -> Any:
    t = type(v)
    if v is None or t is bool or t is float:
        return v
    if t is int:
        if not INT64_MIN <= v <= INT64_MAX:
            raise ValueError(f"{where}: {v} does not fit in int64; store float(value)")
        return v
    if t is str:
        problem = text_problem(v)
        if problem is not None:
            raise ValueError(f"{where}: the value {problem}")
        return v
    if isinstance(v, Image):
        return v._raw(where)
    module = t.__module__
    if (module == "numpy" or module.startswith("torch")) and _size(v) == 1:
        return _cell(where, v.item())
    for base in (bool, int, float, str):  # subclasses such as IntEnum or np.float64
        if isinstance(v, base):
            return _cell(where, base(v))
    raise TypeError(
        f"{where} is a {t.__name__}; table cells are None, bools, numbers, strings or trackd.Image"
    )


def _size(v: Any) -> int:
    size = getattr(v, "size", None)
    if callable(size):  # torch: size() is the shape
        return int(v.numel())
    return int(size) if size is not None else 0
