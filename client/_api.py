"""``trackd.Api``: read what is on the server (entities, projects, runs, history).

Example::

    api = trackd.Api()
    for run in api.runs("alice/mnist", filters={"state": "finished", "config.lr": {"$gt": 1e-3}}):
        print(run.id, run.summary.get("loss"))
    df = api.run("alice/mnist/abc123").history(keys=["loss"])

Every call asks for msgpack, so NaN, inf and 64-bit ints come back exactly as logged.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ._http import ServerClient
from ._wire.settings import load
from .cli.credentials import DEFAULT_BASE_URL, normalize_url, resolve
from .cli.login import Viewer, saved_key
from .errors import UsageError

SCAN_PAGE_STEPS = 10_000  # steps per request of scan_history (the server reads blocks of 1024)
RUNS_PAGE = 1000  # runs per request of Api.runs


@dataclass(frozen=True, slots=True)
class ApiEntity:
    name: str
    kind: str  # "user" or "team"


@dataclass(frozen=True, slots=True)
class ApiProject:
    entity: str
    name: str
    created_at: float | None = None

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.name}"


def _q(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


@dataclass(frozen=True, slots=True)
class ApiRun:
    """One run as the server has it; ``history()`` and ``scan_history()`` fetch its rows."""

    id: str
    entity: str
    project: str
    name: str | None = None
    state: str | None = None
    group: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    created_at: float | None = None
    heartbeat_at: float | None = None
    finished_at: float | None = None
    host: str | None = None
    user: str | None = None  # the user whose API key created the run
    program: str | None = None
    git_commit: str | None = None
    exit_code: int | None = None
    last_seq: int | None = None
    last_step: int | None = None
    client: ServerClient | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any], client: ServerClient | None = None) -> ApiRun:
        names = {f.name for f in fields(cls)} - {"client"}
        values = {k: v for k, v in doc.items() if k in names and v is not None}
        return cls(**values, client=client)

    @property
    def path(self) -> str:
        """``entity/project/id``, as :meth:`Api.run` takes it."""
        return f"{self.entity}/{self.project}/{self.id}"

    def __repr__(self) -> str:
        return f"<ApiRun {self.path} ({self.state})>"

    def _get(self, suffix: str, params: dict[str, Any]) -> Any:
        if self.client is None:
            raise UsageError(f"run {self.path!r} is not attached to a server; get it from Api()")
        url = f"/runs/{_q(self.entity, self.project, self.id)}{suffix}"
        return self.client.get(url, params={k: v for k, v in params.items() if v is not None})

    def history(
        self, keys: list[str] | None = None, samples: int | None = 500, pandas: bool = True
    ) -> Any:
        """The run's history rows ``{"_step", "_timestamp", key: value}``, by step.

        The server downsamples each key's series to about ``samples`` points (500 unless
        told otherwise; spikes are kept); the series are merged back into rows by step, so a
        row holds the keys sampled at that step. ``samples=None`` asks for every row (the
        server refuses a very long history that way: use :meth:`scan_history`). Returns a pandas ``DataFrame`` when pandas is installed
        and ``pandas=True``, else a list of dicts::

            df = run.history(keys=["loss"], samples=500)
        """
        params = {"keys": _keys_param(keys), "samples": samples}
        answer = self._get("/history", params)
        rows = rows_from_series(answer["keys"]) if samples is not None else list(answer)
        return _frame(rows) if pandas else rows

    def scan_history(
        self, keys: list[str] | None = None, page_steps: int = SCAN_PAGE_STEPS
    ) -> Iterator[dict[str, Any]]:
        """Every history row, in step order, fetched ``page_steps`` steps at a time."""
        if page_steps < 1:
            raise UsageError(f"scan_history(): page_steps={page_steps}; pass 1 or more")
        last = self._get("", {}).get("last_step")
        start, span = 0, page_steps
        while last is not None and start <= last:
            params = {"keys": _keys_param(keys), "min_step": start, "max_step": start + span - 1}
            page = self._get("/history", params)
            yield from page
            start += span
            # Steps may jump far ahead: widen the window over empty stretches.
            span = page_steps if page else span * 2

    def media(
        self, key: str, min_step: int | None = None, max_step: int | None = None
    ) -> list[dict[str, Any]]:
        """The rich values (images, histograms, tables) logged under ``key``, by step:
        ``[{"step": 3, "value": {"_type": "image-file", "url": ..., ...}}, ...]``. An image's
        (or a mask's) ``url`` is read with :meth:`fetch`::

            first = run.media("examples")[0]["value"]
            png = run.fetch(first["url"])
        """
        params = {"keys": key, "min_step": min_step, "max_step": max_step}
        found: list[dict[str, Any]] = self._get("/media", params)["media"].get(key, [])
        return found

    def fetch(self, url: str, root: str | os.PathLike[str] | None = None) -> bytes:
        """The bytes at a ``url`` from :meth:`media` (an image or a mask)."""
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            dest = Path(tmp, "blob")
            self._server().download(url, dest)
            return dest.read_bytes()

    def files(self) -> list[ApiFile]:
        """The run's files (uploaded, and saved with ``trackd.save``)."""
        answer = self._get("/files", {})
        return [ApiFile(self, f["name"], f["size"], f.get("sha256")) for f in answer["files"]]

    def file(self, name: str) -> ApiFile:
        """The run's file ``name``; :class:`UsageError` if it has none by that name."""
        for found in self.files():
            if found.name == name:
                return found
        raise UsageError(f"run {self.path!r} has no file {name!r}; list them with run.files()")

    def _server(self) -> ServerClient:
        if self.client is None:
            raise UsageError(f"run {self.path!r} is not attached to a server; get it from Api()")
        return self.client


@dataclass(frozen=True, slots=True)
class ApiFile:
    """A file of a run on the server; :meth:`download` fetches it."""

    run: ApiRun = field(repr=False)
    name: str
    size: int
    sha256: str | None = None

    def download(self, root: str | os.PathLike[str] = ".", replace: bool = False) -> Path:
        """Write the file to ``root/<name>`` (streamed) and return that path; an existing
        file is kept unless ``replace``::

            api.run("alice/mnist/abc123").file("model.pt").download("restore/")
        """
        dest = Path(root, *self.name.split("/"))
        if dest.exists() and not replace:
            raise UsageError(f"{dest} exists; pass replace=True to overwrite it")
        url = f"/runs/{_q(self.run.entity, self.run.project, self.run.id)}/files/"
        self.run._server().download(url + quote(self.name), dest)
        return dest


def _keys_param(keys: list[str] | None) -> str | None:
    if keys is None:
        return None
    if isinstance(keys, str):
        raise UsageError(f"history(): keys={keys!r} is a str; pass a list of keys, e.g. [{keys!r}]")
    return ",".join(keys)


def rows_from_series(series: dict[str, dict[str, list[Any]]]) -> list[dict[str, Any]]:
    """Per-key ``{"step", "value", "time"}`` series merged into rows ordered by step."""
    by_step: dict[int, dict[str, Any]] = {}
    for key, points in series.items():
        for step, value, t in zip(points["step"], points["value"], points["time"], strict=True):
            row = by_step.setdefault(step, {"_step": step, "_timestamp": t})
            row[key] = value
    return [by_step[step] for step in sorted(by_step)]


def _frame(rows: list[dict[str, Any]]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame.from_records(rows)


class Api:
    """A read client of the trackd server.

    The server and key default to what ``trackd login`` / ``trackd init`` saved (or
    ``TRACKD_BASE_URL`` / ``TRACKD_API_KEY``); the default entity is ``./trackd/settings.json``'s
    or ``TRACKD_ENTITY``, else the key's user::

        api = trackd.Api()
        runs = api.runs("mnist", filters={"state": "finished"})
    """

    def __init__(self, host: str | None = None, api_key: str | None = None) -> None:
        settings = load()
        target = resolve(settings)
        self.base_url = normalize_url(host) if host else (target.base_url or DEFAULT_BASE_URL)
        key = api_key or settings.api_key or saved_key(settings, self.base_url)
        self._client = ServerClient(self.base_url, key, timeout=settings.http_timeout)
        self._entity = target.entity
        self._project = target.project

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<trackd.Api {self.base_url}>"

    @property
    def default_entity(self) -> str:
        if self._entity is None:
            self._entity = self.viewer().default_entity
        return self._entity

    def viewer(self) -> Viewer:
        """The user behind the API key."""
        return Viewer.from_json(self._client.get("/viewer"))

    def entities(self) -> list[ApiEntity]:
        """The entities (the user and its teams) the key may read."""
        docs = self._client.get("/entities")["entities"]
        return [ApiEntity(str(d["name"]), str(d["kind"])) for d in docs]

    def projects(self, entity: str | None = None) -> list[ApiProject]:
        """The projects of ``entity`` (the default entity if ``None``), by name."""
        ent = entity or self.default_entity
        answer = self._client.get(f"/entities/{_q(ent)}/projects")
        return [ApiProject(ent, str(d["name"]), d.get("created_at")) for d in answer["projects"]]

    def runs(
        self,
        path: str | None = None,
        filters: dict[str, Any] | None = None,
        order: str | None = None,
    ) -> list[ApiRun]:
        """The runs of project ``path`` (``"entity/project"`` or ``"project"``), oldest first.

        ``filters`` is a wandb-style query document, e.g.
        ``{"state": "finished", "config.lr": {"$gt": 0.01}, "tags": "baseline"}``; ``order``
        sorts by a field, e.g. ``"-summary.loss"`` (descending) or ``"config.lr"``. The
        server filters and sorts; the runs are fetched a page at a time.
        """
        entity, project = self._project_path(path)
        params: dict[str, Any] = {"limit": RUNS_PAGE}
        if filters:
            params["filters"] = json.dumps(filters, allow_nan=False)
        if order:
            params["order"] = order
        url = f"/entities/{_q(entity, 'projects', project)}/runs"
        out: list[ApiRun] = []
        while True:
            answer = self._client.get(url, dict(params, offset=len(out)))
            out += [ApiRun.from_json(doc, self._client) for doc in answer["runs"]]
            if not answer["runs"] or len(out) >= int(answer.get("total", len(out))):
                return out

    def run(self, path: str) -> ApiRun:
        """One run by ``"entity/project/run_id"`` (or ``"project/run_id"``, or ``"run_id"``)."""
        parts = [p for p in path.strip("/").split("/") if p]
        if len(parts) == 4 and parts[2] == "runs":  # the web UI's entity/project/runs/id
            del parts[2]
        if not 1 <= len(parts) <= 3:
            raise UsageError(f"run path {path!r} is not 'entity/project/run_id'")
        entity, project = self._project_path("/".join(parts[:-1]) or None)
        doc = self._client.get(f"/runs/{_q(entity, project, parts[-1])}")
        return ApiRun.from_json(doc, self._client)

    def _project_path(self, path: str | None) -> tuple[str, str]:
        parts = [p for p in (path or "").strip("/").split("/") if p]
        if len(parts) == 2:
            return parts[0], parts[1]
        if len(parts) == 1:
            return self.default_entity, parts[0]
        if not parts and self._project:
            return self.default_entity, self._project
        raise UsageError(
            f"project path {path!r} is not 'entity/project' or 'project'; pass one, or run "
            "`trackd init` to set this directory's project"
        )
