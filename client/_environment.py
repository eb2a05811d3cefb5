"""The run's environment, recorded at ``init()``: machine, Python, command line, git, GPUs.

:func:`collect` is what ``RunStart.environment`` holds; it is fast (three ``git`` processes
started at once, each with a short timeout; no pip, no nvidia-smi, never an ``import torch``).
:func:`write_files` writes what is too big or too slow for ``init()``: the installed packages
as ``requirements.txt`` (from ``importlib.metadata``) and, in a dirty git checkout, the
uncommitted changes as ``diff.patch``; the run saves both as files (policy ``now``) from a
background thread.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIT_TIMEOUT = 2.0  # seconds one git command may take at init()
MAX_DIFF_BYTES = 16 << 20  # a larger diff is cut (and says so)
REQUIREMENTS_NAME = "requirements.txt"
DIFF_NAME = "diff.patch"
_GPU_INFO = Path("/proc/driver/nvidia/gpus")


@dataclass(frozen=True, slots=True)
class Git:
    """The git checkout the script runs in (all ``None`` outside one)."""

    root: str | None = None
    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    dirty: bool | None = None


def collect() -> tuple[dict[str, Any], Git]:
    """``RunStart.environment`` for this process, and its git checkout."""
    git = git_info()
    gpus = gpu_names()
    env: dict[str, Any] = {
        "host": socket.gethostname(),
        "os": _os_name(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "args": [str(a) for a in sys.argv],
        "cwd": os.getcwd(),
        "cpu_count": os.cpu_count(),
        "gpu_count": len(gpus),
        "gpus": gpus,
        "git": {
            "remote": git.remote,
            "commit": git.commit,
            "branch": git.branch,
            "dirty": git.dirty,
        },
    }
    cuda = cuda_version()
    if cuda is not None:
        env["cuda"] = cuda
    return env, git


def _os_name() -> str:
    try:
        pretty = platform.freedesktop_os_release().get("PRETTY_NAME")
    except OSError:
        pretty = None
    base = f"{platform.system()} {platform.release()} {platform.machine()}"
    return f"{base} ({pretty})" if pretty else base


def git_info() -> Git:
    """The checkout's root, commit, branch, ``origin`` URL and whether tracked files changed."""
    commands = {
        "rev": ["git", "rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD"],
        "remote": ["git", "config", "--get", "remote.origin.url"],
        "dirty": ["git", "diff", "--quiet", "HEAD", "--"],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, argv in commands.items():  # started together: init() waits for the slowest
            procs[name] = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
            )
    except OSError:  # no git
        _reap(procs)
        return Git()
    out = {name: _result(proc) for name, proc in procs.items()}
    rev_code, rev_text = out["rev"]
    lines = rev_text.splitlines()
    if rev_code != 0 or len(lines) < 3:
        return Git()
    dirty_code = out["dirty"][0]
    remote_code, remote = out["remote"]
    return Git(
        root=lines[0],
        commit=lines[1],
        branch=None if lines[2] == "HEAD" else lines[2],
        remote=remote.strip() or None if remote_code == 0 else None,
        dirty=None if dirty_code not in (0, 1) else dirty_code == 1,
    )


def _result(proc: subprocess.Popen[bytes]) -> tuple[int | None, str]:
    try:
        stdout, _ = proc.communicate(timeout=GIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, ""
    return proc.returncode, stdout.decode("utf-8", "replace")


def _reap(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        proc.kill()
        proc.communicate()


def gpu_names() -> list[str]:
    """NVIDIA GPU models from the driver's ``/proc`` files (Linux): no library, no process."""
    try:
        entries = sorted(_GPU_INFO.iterdir())
    except OSError:
        return []
    names = []
    for entry in entries:
        try:
            text = (entry / "information").read_text()
        except OSError:
            continue
        model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ":" in ln), "")
        names.append(model or "NVIDIA GPU")
    return names


def cuda_version() -> str | None:
    """torch's CUDA version, only when the script has imported torch already."""
    torch = sys.modules.get("torch")
    version = getattr(getattr(torch, "version", None), "cuda", None)
    return version if isinstance(version, str) else None


def write_files(run_dir: str, git: Git) -> list[tuple[str, str]]:
    """Write ``requirements.txt`` (and ``diff.patch`` in a dirty checkout) into ``run_dir``;
    ``(name in the run, path)`` of each file written."""
    written = []
    path = Path(run_dir) / REQUIREMENTS_NAME
    path.write_text("\n".join(installed_packages()) + "\n")
    written.append((REQUIREMENTS_NAME, str(path)))
    if git.dirty and git.root:
        diff = git_diff(git.root)
        if diff:
            path = Path(run_dir) / DIFF_NAME
            path.write_bytes(diff)
            written.append((DIFF_NAME, str(path)))
    return written


def installed_packages() -> list[str]:
    """``name==version`` of every distribution ``importlib.metadata`` finds on ``sys.path``
    (the first of a name wins, as for imports), sorted; no pip process.

    Names and versions come from the ``name-version.dist-info`` folder names (reading each
    METADATA file takes ~100x longer); ``.egg-info`` folders are read with
    ``importlib.metadata``."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            line = _dist_line(entry, name)
            if line is not None:
                found.setdefault(line.split("==", 1)[0].lower().replace("_", "-"), line)
    return [found[key] for key in sorted(found)]


def _dist_line(folder: str, name: str) -> str | None:
    if name.endswith(".dist-info"):
        dist, _, version = name[: -len(".dist-info")].partition("-")
        return f"{dist}=={version}" if dist and version else None
    if not name.endswith(".egg-info"):
        return None
    from importlib import metadata

    try:
        meta = metadata.PathDistribution(Path(folder or ".", name)).metadata
    except OSError:
        return None
    dist, version = meta["Name"], meta["Version"]
    return f"{dist}=={version}" if dist and version else None


def git_diff(root: str) -> bytes:
    """``git diff HEAD`` of the checkout (binary files as binary patches), at most
    ``MAX_DIFF_BYTES``."""
    try:
        out = subprocess.run(
            ["git", "diff", "--binary", "--no-color", "HEAD", "--"],
            cwd=root,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return b""
    if out.returncode != 0:
        return b""
    if len(out.stdout) > MAX_DIFF_BYTES:
        note = f"\n# trackd: diff cut at {MAX_DIFF_BYTES} of {len(out.stdout)} bytes\n"
        return out.stdout[:MAX_DIFF_BYTES] + note.encode()
    return out.stdout
