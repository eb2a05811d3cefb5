"""System metrics: one sampler thread per daemon, however many runs it serves.

Every ``TRACKD_SYSTEM_INTERVAL`` seconds it measures the machine once (CPU, memory, disk and
network I/O, each NVIDIA GPU through NVML) and the process tree of each run's training
process (the pid its Attach named, and that process's children), and queues one sample per
run. The daemon's main loop (the only thread that touches the socket) sends each as a
``Sample`` to the run's client, whose I/O thread stores it as a ``SystemStats`` record in
its own run log. Keys (README, "System metrics"):

    system/cpu.percent, system/memory.percent, system/memory.used_mb,
    system/memory.available_mb, system/disk.percent, system/disk.read_mbps,
    system/disk.write_mbps, system/network.sent_mbps, system/network.recv_mbps,
    system/proc.cpu.percent, system/proc.cpu.threads, system/proc.memory.rss_mb,
    system/proc.memory.percent, system/proc.count, system/gpu.<i>.{gpu, memory,
    memory_allocated, memory_used_mb, temp, power_watts, power_percent}

A writer of a shared run (label ``rank-1``) has its process tree under its own keys,
``system/rank-1/proc.cpu.percent`` ...; the machine-wide keys go with one writer of the run
per daemon (the least label), so they land once per machine.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple

import psutil

from ._nvml import Gpus

log = logging.getLogger("trackd.daemon")
MB = 1e6  # disk and network rates in MB/s
MIB = 1 << 20  # memory sizes in MiB
SYSTEM = "system/"


class Target(NamedTuple):
    """What to sample for one run (or one writer of a shared run): its training process, the
    folder of its run log, and the run id and writer label of a shared run's writer."""

    pid: int
    run_dir: str
    run_id: str = ""
    label: str = ""  # "" = the run's only writer


class Sampler:
    """The daemon's system-metrics thread. :meth:`watch` and :meth:`take` are for the main
    loop; everything else runs on the sampler's own thread."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._targets: dict[Any, Target] = {}
        self._out: deque[tuple[Any, float, dict[str, float]]] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trackd-sampler", daemon=True)
        self._procs: dict[int, psutil.Process] = {}  # kept, so cpu_percent() measures deltas
        self._io: tuple[float, Any, Any] | None = None
        self._gpus: Gpus | None = None
        self._own_pid = os.getpid()
        self._total_memory = 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def watch(self, targets: dict[Any, Target]) -> None:
        """The runs to sample from now on (replaces the last set; keys are the caller's)."""
        if targets != self._targets:
            self._targets = targets

    def take(self) -> list[tuple[Any, float, dict[str, float]]]:
        """``(key, time, data)`` of each sample taken since the last call."""
        out = []
        while self._out:
            out.append(self._out.popleft())
        return out

    # -- the sampler thread --------------------------------------------------------------
    def _loop(self) -> None:
        self._gpus = Gpus.open()
        psutil.cpu_percent(None)  # the first call only starts the measurement
        self._io_rates(time.monotonic())
        while not self._stop.wait(self.interval):
            try:
                self._sample_all()
            except Exception:  # noqa: BLE001 - a failed sample must not end sampling
                log.exception("a system-metrics sample failed")
        if self._gpus is not None:
            self._gpus.close()

    def _sample_all(self) -> None:
        targets = self._targets
        if not targets:
            self._procs.clear()
            return
        now = time.time()
        machine = self._machine(time.monotonic())
        children = _children()  # one scan of the process table, whatever the run count
        seen: set[int] = set()
        measures_machine = _machine_writers(targets.values())
        for key, target in targets.items():
            data: dict[str, float] = {}
            if measures_machine.get(target.run_id, target.label) == target.label:
                data.update(machine)
                data.update(_disk_use(target.run_dir))
            tree = self._tree(target.pid, children, seen)
            data.update({writer_key(k, target.label): v for k, v in tree.items()})
            self._out.append((key, now, data))
        for pid in set(self._procs) - seen:  # processes that ended or left every tree
            del self._procs[pid]

    def _machine(self, mono: float) -> dict[str, float]:
        mem = psutil.virtual_memory()
        self._total_memory = mem.total or 1
        data = {
            "system/cpu.percent": float(psutil.cpu_percent(None)),
            "system/memory.percent": float(mem.percent),
            "system/memory.used_mb": mem.used / MIB,
            "system/memory.available_mb": mem.available / MIB,
        }
        data.update(self._io_rates(mono))
        if self._gpus is not None:
            data.update(self._gpus.sample())
        return data

    def _io_rates(self, mono: float) -> dict[str, float]:
        """Disk and network MB/s since the last sample."""
        disk, net = _counters(psutil.disk_io_counters), _counters(psutil.net_io_counters)
        last, self._io = self._io, (mono, disk, net)
        if last is None or mono <= last[0]:
            return {}
        span = mono - last[0]
        out = {}
        if disk is not None and last[1] is not None:
            out["system/disk.read_mbps"] = (disk.read_bytes - last[1].read_bytes) / MB / span
            out["system/disk.write_mbps"] = (disk.write_bytes - last[1].write_bytes) / MB / span
        if net is not None and last[2] is not None:
            out["system/network.sent_mbps"] = (net.bytes_sent - last[2].bytes_sent) / MB / span
            out["system/network.recv_mbps"] = (net.bytes_recv - last[2].bytes_recv) / MB / span
        return out

    def _tree(self, pid: int, children: dict[int, list[int]], seen: set[int]) -> dict[str, float]:
        """CPU (percent of one core, as ``top``), threads and memory of ``pid`` and its
        descendants (not this daemon, which a training process may have spawned); empty
        when ``pid`` is gone."""
        if self._process(pid) is None:
            return {}
        cpu = rss = 0.0
        threads = count = 0
        todo = [pid]
        while todo:
            member = todo.pop()
            todo.extend(children.get(member, ()))
            proc = self._process(member) if member != self._own_pid else None
            if proc is None:
                continue
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
            except psutil.Error:
                continue
            seen.add(member)
            count += 1
        return {
            "system/proc.cpu.percent": cpu,
            "system/proc.cpu.threads": float(threads),
            "system/proc.memory.rss_mb": rss / MIB,
            "system/proc.memory.percent": 100.0 * rss / self._total_memory,
            "system/proc.count": float(count),
        }

    def _process(self, pid: int) -> psutil.Process | None:
        """The kept :class:`psutil.Process` of ``pid`` (the same process, not a reused pid)."""
        proc = self._procs.get(pid)
        if proc is not None and proc.is_running():
            return proc
        try:
            proc = psutil.Process(pid)
            proc.cpu_percent(None)  # starts its CPU measurement: 0 the first time
        except psutil.Error:
            self._procs.pop(pid, None)
            return None
        self._procs[pid] = proc
        return proc


def writer_key(key: str, label: str) -> str:
    """The key of a process-tree measure of a shared run's writer: ``system/proc.cpu.percent``
    of writer ``rank-1`` is ``system/rank-1/proc.cpu.percent`` (the UI groups by the part
    before the last ``/``: a group per writer); the only writer's keys stay as they are."""
    return f"{SYSTEM}{label}/{key[len(SYSTEM) :]}" if label else key


def _machine_writers(targets: Iterable[Target]) -> dict[str, str]:
    """Run id -> the label of its writer here that carries the machine-wide measures (the
    least), so several writers of a run on one machine send them once."""
    first: dict[str, str] = {}
    for target in targets:
        if target.run_id and (target.run_id not in first or target.label < first[target.run_id]):
            first[target.run_id] = target.label
    return first


def _children() -> dict[int, list[int]]:
    """Parent pid -> its children's pids, for every process (one pass over /proc)."""
    out: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        names = []
    if not names:  # not Linux: psutil's way
        for proc in psutil.process_iter(["ppid"]):
            if proc.info["ppid"] is not None:
                out.setdefault(proc.info["ppid"], []).append(proc.pid)
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # it ended meanwhile
        fields = stat[stat.rfind(b")") + 2 :].split(None, 2)  # state, ppid, ...
        if len(fields) >= 2 and fields[0] != b"Z":  # a zombie has ended
            out.setdefault(int(fields[1]), []).append(int(name))
    return out


def _counters(read: Any) -> Any:
    try:
        return read()
    except (OSError, RuntimeError):  # no disks (some containers), no /proc/net
        return None


def _disk_use(path: str) -> dict[str, float]:
    """How full the file system holding the run's log is."""
    try:
        return {"system/disk.percent": float(psutil.disk_usage(path).percent)}
    except OSError:
        return {}
