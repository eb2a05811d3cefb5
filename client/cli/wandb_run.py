"""One wandb run, rebuilt from its protobuf records and turned into trackd records.

A run wandb resumed has a ``.wandb`` file per attempt (each in a run directory of its own,
``offline-run-<time>-<id>``): they are read into one :class:`WandbRun` in the order they
started (:meth:`WandbRun.begin` before each), and make one trackd run. An attempt's steps are
kept while they continue the run's; an attempt that starts again at a step the run has
(an offline resume, which cannot know the run's last step) is shifted to follow it, as trackd
shifts a resumed trainer's steps, and the import says so."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._values import check_log_data, plain, summary_row
from .._wire import media
from .._wire import records as p
from .._wire.limits import valid_run_id
from ..errors import Error
from .wandb_media import NotImported, is_media, trackd_value

GOALS = {1: "minimize", 2: "maximize"}
SUMMARY_MODES = ("min", "max", "mean", "best", "last", "none", "first")
WANDB_KEYS = ("_step", "_timestamp", "_runtime", "_wandb")


class WandbRun:
    """What a run's ``.wandb`` files (one per attempt) say about it, record by record."""

    def __init__(self) -> None:
        self.files_dirs: list[Path] = []  # each attempt's files/ folder, in order
        self.media_files: set[str] = set()  # the files imported as media, not as files
        self.run: Any = None
        self.start_time: float | None = None  # the first attempt's
        self._offset = 0  # added to the steps of this attempt
        self._new_attempt = False
        self.notes: list[str] = []
        self.config: dict[str, Any] = {}
        # path -> its latest JSON text (None: removed); decoded once, at the end (wandb
        # writes a summary record per logged row: decoding each would double the work)
        self._summary: dict[tuple[str, ...], str | None] = {}
        self.rows: list[tuple[int, float, dict[str, Any], bool]] = []  # ..., holds media
        self.metrics: list[Any] = []
        self.exit: Any = None
        self.skipped: dict[str, int] = {}

    @property
    def files_dir(self) -> Path:
        """The files/ folder of the attempt being read (media values name files in it)."""
        return self.files_dirs[-1]

    def begin(self, files_dir: Path) -> None:
        """Start reading the next attempt (a ``.wandb`` file), whose files are in
        ``files_dir``; attempts are read in the order they started."""
        self.files_dirs.append(files_dir)
        self._new_attempt = bool(self.rows)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def take(self, record: Any) -> None:
        """Fold one record in (records trackd has no use for are passed over)."""
        kind = record.WhichOneof("record_type")
        if kind == "run":
            self.run = record.run
            if self.start_time is None:
                self.start_time = record.run.start_time.seconds + record.run.start_time.nanos / 1e9
            _apply(self.config, record.run.config.update, record.run.config.remove)
        elif kind == "config":
            _apply(self.config, record.config.update, record.config.remove)
        elif kind == "summary":
            for item in record.summary.update:
                self._summary[_path(item)] = item.value_json
            for item in record.summary.remove:
                self._summary[_path(item)] = None
        elif kind == "history":
            self._row(record.history)
        elif kind == "metric":
            self.metrics.append(record.metric)
        elif kind == "exit":
            self.exit = record.exit

    @property
    def summary(self) -> dict[str, Any]:
        """The run's summary as wandb left it."""
        out: dict[str, Any] = {}
        for path, text in self._summary.items():
            node = out
            for part in path[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            if text is None:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = json.loads(text)
        return out

    def _row(self, history: Any) -> None:
        items = history.item
        if all(item.WhichOneof("value") is None for item in items):  # one decode per row
            decoded = json.loads("[" + ",".join(i.value_json or "null" for i in items) + "]")
            values = {_key(item): v for item, v in zip(items, decoded, strict=True)}
        else:
            values = {_key(item): _value(item) for item in items}
        if any(key.endswith("._type") for key in values):
            values = _media_maps(values)
        step = history.step.num if history.HasField("step") else int(values.get("_step", 0))
        if self._new_attempt:
            self._follow(step)
        step += self._offset
        when = float(values.get("_timestamp", 0.0))
        row, has_media = {}, False
        for key, value in values.items():
            if key.startswith("_"):
                continue
            if is_media(value):
                value = self._media(value)
                if value is None:
                    continue
                has_media = True
            row[key] = value
        self.rows.append((step, when, row, has_media))

    def _follow(self, step: int) -> None:
        """The first row of a resumed attempt: shift its steps if they do not follow the run's."""
        self._new_attempt = False
        last = self.rows[-1][0]
        self._offset = last + 1 - step if step <= last else 0
        if self._offset:
            self.notes.append(
                f"a resumed attempt starts again at step {step}, at or below the run's last "
                f"step {last}: its steps are shifted by {self._offset} to follow it"
            )

    def _media(self, value: dict[str, Any], folders: list[Path] | None = None) -> Any:
        """The trackd value of a wandb media map whose files are in the first of ``folders``
        that has them (default: this attempt's), or None (counted as skipped)."""
        for folder in folders or [self.files_dir]:
            try:
                converted = trackd_value(value, folder)
                break
            except NotImported as exc:
                reason = str(exc)
        else:
            self.skip(reason)
            return None
        for item in value.get("filenames") or [value.get("path")]:
            if isinstance(item, str):
                self.media_files.add(item)
        return converted

    def records(self) -> tuple[str, list[Any], int]:
        """The run id, its trackd records in order (seq 1, 2, ...), and its file count."""
        run = self.run
        if not valid_run_id(run.run_id):
            raise Error(f"wandb run id {run.run_id!r} is not a valid trackd run id")
        start = self.start_time if self.start_time is not None else 0.0
        out: list[Any] = [self._run_start(start)]
        defined = {}  # name -> its last definition (each attempt defines its metrics again)
        for metric in self.metrics:
            if not metric.expanded_from_glob:
                defined[metric.name or metric.glob_name] = metric
        for metric in defined.values():
            out.append(_metric(run.run_id, len(out) + 1, metric))
        last_step = -1
        for step, when, row, has_media in self.rows:
            data = self._checked(row)
            if step <= last_step:
                self.skip("history rows at a step not above the one before (wandb resumed)")
                continue
            last_step = step
            if has_media and media.row_has_raw(data):
                out.append(
                    p.HistoryMedia(p.HISTORY_MEDIA, run.run_id, len(out) + 1, step, when, data)
                )
            else:
                out.append(p.History(p.HISTORY, run.run_id, len(out) + 1, step, when, data))
        out.append(p.Summary(p.SUMMARY, run.run_id, len(out) + 1, self._summary_values()))
        named = {name: path for folder in self.files_dirs for name, path in _files(folder)}
        files = [(n, path) for n, path in named.items() if n not in self.media_files]
        for name, path in files:
            out.append(p.File(p.FILE, run.run_id, len(out) + 1, name, path, "now"))
        out.append(self._finish(len(out) + 1, start))
        return run.run_id, out, len(files)

    def _summary_values(self) -> dict[str, Any]:
        """The summary as trackd keeps it: a media value as the client's summary holds the
        last one logged (an image as a description of it, a histogram or table as it is)."""
        summary = {}
        for key, value in self.summary.items():
            if key.startswith("_"):
                continue
            if is_media(value):  # the summary's media may be of any attempt, the last first
                value = self._media(value, self.files_dirs[::-1])
                if value is None:
                    continue
                value = summary_row(check_log_data({key: value}))[key]
            summary[key] = value
        return self._checked(summary, plain_only=True)

    def _run_start(self, start: float) -> p.RunStart:
        run = self.run
        config = {k: v for k, v in self.config.items() if k not in WANDB_KEYS}
        return p.RunStart(
            p.RUN_START, run.run_id, 1, None, run.project or "uncategorized",
            run.display_name or run.run_id, run.run_group or None, run.job_type or None,
            list(run.tags), run.notes or None, self._checked(config, plain_only=True), start,
            run.host, 0, None, run.git.commit or None, "offline",
        )  # fmt: skip

    def _finish(self, seq: int, start: float) -> p.Finish:
        last = max((row[1] for row in self.rows), default=start)
        if self.exit is None:
            return p.Finish(p.FINISH, self.run.run_id, seq, "crashed", None, last)
        code = self.exit.exit_code
        end = max(last, start + self.exit.runtime)
        return p.Finish(p.FINISH, self.run.run_id, seq, "failed" if code else "finished", code, end)

    def _checked(self, data: dict[str, Any], plain_only: bool = False) -> dict[str, Any]:
        """``data`` with each value trackd cannot store left out (and counted)."""
        out = {}
        for key, value in data.items():
            try:
                if plain_only:
                    out[key] = plain(value, key)
                else:
                    out.update(check_log_data({key: value}))
            except (TypeError, ValueError) as exc:
                self.skip(f"values trackd cannot store ({exc})")
        return out


def _media_maps(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (wandb's nested keys joined by dots) with each media map whole again: wandb
    writes ``img: {"_type": "image-file", "path": ...}`` as ``img._type``, ``img.path`` ...."""
    prefixes = [key[: -len("._type")] for key in values if key.endswith("._type")]
    out = dict(values)
    for prefix in sorted(prefixes, key=len):  # an outer map takes its nested ones along
        if prefix in out or not any(k.startswith(prefix + ".") for k in out):
            continue
        value: dict[str, Any] = {}
        for key in [k for k in out if k.startswith(prefix + ".")]:
            _put(value, key[len(prefix) + 1 :].split("."), out.pop(key))
        out[prefix] = value
    return out


def _put(node: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        node = node[part] if isinstance(node.get(part), dict) else _fresh(node, part)
    node[path[-1]] = value


def _key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


def _value(item: Any) -> Any:
    kind = item.WhichOneof("value")
    if kind is None or kind == "json":
        return json.loads(item.json if kind else item.value_json or "null")
    return None if kind == "none" else getattr(item, kind)


def _path(item: Any) -> tuple[str, ...]:
    return tuple(item.nested_key) or (item.key,)


def _apply(target: dict[str, Any], updates: Any, removes: Any) -> None:
    """wandb's config updates and removals, nested keys included."""
    for item in updates:
        path = list(item.nested_key) or [item.key]
        node = target
        for part in path[:-1]:
            node = (
                node.setdefault(part, {})
                if isinstance(node.get(part), dict)
                else _fresh(node, part)
            )
        node[path[-1]] = json.loads(item.value_json or "null")
    for item in removes:
        path = list(item.nested_key) or [item.key]
        node = target
        for part in path[:-1]:
            node = node.get(part, {})
        if isinstance(node, dict):
            node.pop(path[-1], None)


def _fresh(node: dict[str, Any], part: str) -> dict[str, Any]:
    node[part] = {}
    return node[part]


def _metric(run_id: str, seq: int, metric: Any) -> p.Metric:
    modes = [m for m in SUMMARY_MODES if getattr(metric.summary, m)]
    return p.Metric(
        p.METRIC, run_id, seq, metric.name or metric.glob_name, metric.step_metric or None,
        ",".join(modes) or None, GOALS.get(metric.goal), metric.options.hidden,
    )  # fmt: skip


def _files(files_dir: Path) -> list[tuple[str, str]]:
    """(name in the run, path on disk) of every file under the run's ``files/`` folder."""
    if not files_dir.is_dir():
        return []
    out = []
    for root, _, names in sorted(os.walk(files_dir)):
        for name in sorted(names):
            path = Path(root) / name
            out.append((path.relative_to(files_dir).as_posix(), str(path.resolve())))
    return out
