"""The daemon's system-metrics sampler measures a run's whole process tree, once per round."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from trackd.daemon._sampler import Sampler, Target

from tests._support.procs import wait_for

# a training process with a worker child holding 64 MiB, as a DataLoader worker might
TREE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import time; block = bytearray(64 << 20); print('ready', flush=True); time.sleep(60)"],
    stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_sample_sums_the_process_tree_and_machine_once(tmp_path: object) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True, cwd=str(tmp_path)
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        sampler = Sampler(interval=60)
        sampler.watch({"a": Target(parent.pid, str(tmp_path)), "b": Target(os.getpid(), "/")})
        sampler._sample_all()  # the first round starts the CPU measurement
        time.sleep(0.2)
        sampler._sample_all()
        samples = sampler.take()
        assert [key for key, _t, _d in samples] == ["a", "b", "a", "b"]
        (_key, when, tree), (_key2, _when2, mine) = samples[2:]
        assert abs(when - time.time()) < 5
        assert tree["system/proc.count"] == 2  # the training process and its worker
        assert tree["system/proc.memory.rss_mb"] >= 64
        assert 0 <= tree["system/proc.memory.percent"] <= 100
        assert tree["system/proc.cpu.threads"] >= 2
        for key in ("system/cpu.percent", "system/memory.used_mb", "system/disk.percent"):
            assert tree[key] == mine[key] or key == "system/disk.percent"  # machine: shared
        assert tree["system/disk.read_mbps"] >= 0 and "system/network.recv_mbps" in tree
        os.kill(child_pid, 9)
        wait_for(lambda: _count(sampler, "a") == 1, timeout=10, what="the worker to go")
    finally:
        parent.kill()
        parent.communicate()


def _count(sampler: Sampler, key: str) -> float:
    sampler._sample_all()
    return next(d["system/proc.count"] for k, _t, d in reversed(sampler.take()) if k == key)


def test_writers_of_a_shared_run_get_their_own_process_keys_and_the_machine_once() -> None:
    """Two writers of run ``j`` and a plain run on one daemon: each writer's process tree
    under ``system/<label>/proc...``, the machine measured into one writer of ``j`` (the
    least label) and into the plain run, whose keys stay ``system/proc...``."""
    sampler = Sampler(interval=60)
    me = os.getpid()
    sampler.watch(
        {
            "b": Target(me, "/", "j", "rank-1"),
            "a": Target(me, "/", "j", "rank-0"),
            "plain": Target(me, "/", "k", ""),
        }
    )
    sampler._sample_all()
    got = {key: data for key, _t, data in sampler.take()}
    assert "system/rank-0/proc.memory.rss_mb" in got["a"] and "system/cpu.percent" in got["a"]
    assert "system/rank-1/proc.memory.rss_mb" in got["b"]
    assert not [k for k in got["b"] if not k.startswith("system/rank-1/proc.")]
    assert "system/proc.memory.rss_mb" in got["plain"] and "system/cpu.percent" in got["plain"]
    assert not [k for k in got["a"] if k.startswith("system/proc.")]
