"""Console capture's line logic: complete lines, ``\\r`` progress bars collapsed, the tee."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from trackd import _console
from trackd._console import MAX_LINE_CHARS, Capture, Lines, Tee


def test_a_bar_written_across_drains_collapses_to_its_last_state() -> None:
    lines = Lines()
    got = []
    for i in range(101):
        got += lines.feed(f"\rtrain: {i:3d}%|{'#' * (i // 10):10s}|")
    assert got == [] and len(lines.partial) < 40  # no growth while the bar runs
    got += lines.feed("\n")
    assert got == ["train: 100%|##########|"]


def test_lines_split_anywhere_and_crlf() -> None:
    lines = Lines()
    assert lines.feed("a") == []
    assert lines.feed("bc\r\nde") == ["abc"]
    assert lines.feed("f\n\nbar 1\rbar 2\r\n") == ["def", "", "bar 2"]
    assert lines.feed("tail") == [] and lines.rest() == ["tail"] and lines.rest() == []
    assert lines.feed("50%\r") == [] and lines.feed("\n") == ["50%"]  # \r, then the end


def test_a_line_without_end_is_cut_at_the_limit() -> None:
    lines = Lines()
    got = lines.feed("x" * (2 * MAX_LINE_CHARS + 5))
    assert got == ["x" * MAX_LINE_CHARS] * 2 and lines.partial == "x" * 5


def test_capture_groups_consecutive_lines_of_a_stream() -> None:
    capture = Capture()
    capture.append("stdout", "one\ntwo\n")
    capture.append("stderr", "warn\n")
    capture.append("stdout", "three\nfour")
    chunks = capture.take()
    assert [(stream, text) for _t, stream, text in chunks] == [
        ("stdout", "one\ntwo"),
        ("stderr", "warn"),
        ("stdout", "three"),
    ]
    assert capture.take() == []
    (last,) = capture.take(final=True)
    assert last[1:] == ("stdout", "four")


def test_text_the_server_cannot_store_is_cleaned() -> None:
    capture = Capture()
    capture.append("stdout", "a\x00b \udcff\n")
    ((_t, _stream, text),) = capture.take()
    assert text == "ab ?"


class _Fixed(io.StringIO):
    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(name)  # a stream whose write cannot be replaced


@pytest.mark.parametrize("kind", [io.StringIO, _Fixed])
def test_capture_writes_through_unchanged_and_stop_undoes_it(kind: type[io.StringIO]) -> None:
    real = sys.stdout
    target = kind()
    sys.stdout = target
    try:
        held = logging.StreamHandler(sys.stdout)  # made before capture starts, as scripts do
        capture = _console.start()
        assert (sys.stdout is target) == (kind is io.StringIO)
        assert isinstance(sys.stdout, Tee) == (kind is _Fixed)
        print("progress\r50%", end="")
        sys.stdout.write("\r100%\n")
        held.emit(logging.makeLogRecord({"msg": "from logging"}))
        assert target.getvalue() == "progress\r50%\r100%\nfrom logging\n"  # every byte
        _console.stop(capture)
        assert sys.stdout is target and "write" not in vars(target)
        print("after")
        got = [text for _t, _s, text in capture.take(final=True)]
        assert got == (["100%\nfrom logging"] if kind is io.StringIO else ["100%"])
    finally:
        sys.stdout = real
