"""Console capture: what the script prints to ``sys.stdout``/``sys.stderr`` goes to the run too.

Each stream's ``write`` is wrapped on the stream object itself (so ``print``, ``logging``
handlers made before ``init()`` and anything else holding the stream are captured): it
writes to the stream first (the user sees the same output, in a terminal and in Jupyter,
where the stream is ipykernel's) and then appends the text to a :class:`Capture` buffer: one
list append under a small lock, nothing else on the caller's thread. A stream that does not
let its ``write`` be replaced is swapped for a :class:`Tee`. The transport's I/O thread drains the buffer (:meth:`Capture.take`)
into complete lines, collapses ``\\r``-driven progress bars (tqdm) to their last state, and
the run stores them as ``Output`` records, promptly, so what was printed up to a ``kill -9``
is in the run log.

Python-level only: output that C extensions or subprocesses write straight to file
descriptors 1 and 2 is not captured. Capturing at the descriptor level takes a pipe and a
reader thread between the process and its terminal, which changes what the user sees when
the process dies (the last output is lost with the reader) and fights other tools that
redirect the descriptors (pytest, Jupyter); the Python streams carry what scripts print.
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Callable
from itertools import groupby
from operator import itemgetter
from typing import Any, TextIO

MAX_LINE_CHARS = 64 * 1024  # a longer line is cut into pieces of this size
MAX_RECORD_CHARS = 200_000  # text in one Output record (well under the 1 MiB string rule)
MAX_PENDING_WRITES = 1_000_000  # printed faster than the I/O thread drains: the rest is dropped
STREAMS = ("stdout", "stderr")
_STREAM, _TEXT = itemgetter(0), itemgetter(1)


def collapse(line: str) -> str:
    """A line as a terminal leaves it after ``\\r`` rewrote it: its last ``\\r`` segment."""
    line = line.rstrip("\r")
    cut = line.rfind("\r")
    return line if cut < 0 else line[cut + 1 :]


def _clean(text: str) -> str:
    """Text the server stores: no NUL, no lone surrogates."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


class Lines:
    """Splits one stream's text into complete, collapsed lines; keeps the unfinished one."""

    __slots__ = ("partial",)

    def __init__(self) -> None:
        self.partial = ""

    def feed(self, text: str) -> list[str]:
        bars = "\r" in text or "\r" in self.partial
        parts = (self.partial + text).split("\n")
        tail = parts.pop()
        cut = tail.rfind("\r", 0, max(0, len(tail) - 1))  # keep only the bar's last state
        self.partial = tail if cut < 0 else tail[cut + 1 :]
        lines = [collapse(part) for part in parts] if bars else parts
        while len(self.partial) > MAX_LINE_CHARS:
            lines.append(self.partial[:MAX_LINE_CHARS])
            self.partial = self.partial[MAX_LINE_CHARS:]
        return lines

    def rest(self) -> list[str]:
        """The unfinished line as a line of its own (at the end of the run)."""
        line, self.partial = collapse(self.partial), ""
        return [line] if line else []


class Capture:
    """Text written to the captured streams of one run, waiting for the I/O thread.

    The printing threads only append to ``chunks`` (a list append is atomic under the GIL;
    no lock, no clock, no syscall per write); the I/O thread takes what is there."""

    def __init__(self) -> None:
        self.active = True  # False once stopped, and in a forked child (see _after_fork)
        self.chunks: list[tuple[str, str]] = []  # (stream, text) as written
        self.dropped = 0
        self._lines = {name: Lines() for name in STREAMS}
        _CAPTURES.add(self)

    def append(self, stream: str, text: str) -> None:
        """Called on the printing thread."""
        if self.active and type(text) is str and text:
            if len(self.chunks) < MAX_PENDING_WRITES:
                self.chunks.append((stream, text))
            else:
                self.dropped += len(text)

    def take(self, final: bool = False) -> list[tuple[float, str, str]]:
        """``(time, stream, text)`` for each run of complete lines of one stream, in the
        order printed; ``final`` also ends each stream's unfinished line. The time is the
        drain's (drains are 0.1 s apart)."""
        chunks = self.chunks
        n = len(chunks)
        if not n and not final:
            return []
        taken = chunks[:n]
        del chunks[:n]  # writes appended meanwhile stay for the next drain
        dropped, self.dropped = self.dropped, 0
        when = time.time()
        out: list[tuple[float, str, list[str]]] = []
        if dropped:
            note = f"[trackd: {dropped} characters printed were not captured (printed faster than stored)]"
            _add(out, when, "stderr", [note])
        for stream, group in groupby(taken, _STREAM):  # a stream's run of writes: one feed
            _add(out, when, stream, self._lines[stream].feed("".join(map(_TEXT, group))))
        if final:
            for stream, buffer in self._lines.items():
                _add(out, when, stream, buffer.rest())
        return [(t, stream, _clean("\n".join(lines))) for t, stream, lines in out if lines]


_CAPTURES: weakref.WeakSet[Capture] = weakref.WeakSet()


def _after_fork() -> None:
    """A forked child prints to its own streams: nothing is buffered for nobody."""
    for capture in list(_CAPTURES):
        capture.active = False


os.register_at_fork(after_in_child=_after_fork)


def _add(
    out: list[tuple[float, str, list[str]]], when: float, stream: str, lines: list[str]
) -> None:
    """Join ``lines`` to the last group when it is the same stream and has room."""
    if not lines:
        return
    if out and out[-1][1] == stream and sum(map(len, out[-1][2])) < MAX_RECORD_CHARS:
        out[-1][2].extend(lines)
    else:
        out.append((when, stream, list(lines)))


class Tee:
    """Stands in for a stream whose ``write`` cannot be replaced: writes through, captures."""

    def __init__(self, stream: str, original: TextIO, capture: Capture) -> None:
        self._trackd_stream = stream
        self._trackd_original = original
        self._trackd_capture = capture

    def write(self, text: str) -> int:
        n = self._trackd_original.write(text)
        self._trackd_capture.append(self._trackd_stream, text)
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding ...
        return getattr(self._trackd_original, name)


def _capturing_write(name: str, write: Callable[[str], int], capture: Capture) -> Any:
    chunks = capture.chunks  # the same list for the capture's life
    append = chunks.append

    def capturing_write(text: str) -> int:
        n = write(text)
        if capture.active and type(text) is str and text:  # inlined Capture.append
            if len(chunks) < MAX_PENDING_WRITES:
                append((name, text))
            else:
                capture.dropped += len(text)
        return n

    capturing_write._trackd_capture = capture  # type: ignore[attr-defined]
    capturing_write._trackd_write = write  # type: ignore[attr-defined]
    return capturing_write


def start() -> Capture:
    """Capture what is written to ``sys.stdout`` and ``sys.stderr`` into a new :class:`Capture`.

    The stream objects stay the same: their ``write`` is replaced on the instance, so a
    ``logging`` handler made before ``init()`` (it holds the stream) is captured too. A
    stream whose ``write`` cannot be replaced is swapped for a :class:`Tee`."""
    capture = Capture()
    for name in STREAMS:
        stream = getattr(sys, name)
        if stream is None:
            continue
        if isinstance(stream, Tee):  # an earlier run's tee: capture what it wraps
            stream = stream._trackd_original
            setattr(sys, name, stream)
        write = stream.write
        write = getattr(write, "_trackd_write", write)  # an earlier run's, never stopped
        try:
            stream.write = _capturing_write(name, write, capture)
        except (AttributeError, TypeError):
            setattr(sys, name, Tee(name, stream, capture))
    return capture


def stop(capture: Capture) -> None:
    """Stop capturing; undo what :func:`start` did where nobody changed it since."""
    capture.active = False
    for name in STREAMS:
        stream = getattr(sys, name)
        if isinstance(stream, Tee):
            if stream._trackd_capture is capture:
                setattr(sys, name, stream._trackd_original)
            continue
        write = getattr(stream, "write", None)
        if getattr(write, "_trackd_capture", None) is capture:
            try:
                del stream.write  # the class's write again
            except AttributeError:
                pass
            if getattr(stream, "write", None) != write._trackd_write:  # type: ignore[union-attr]
                stream.write = write._trackd_write  # type: ignore[union-attr]
