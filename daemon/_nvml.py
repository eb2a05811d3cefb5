"""Per-GPU metrics through NVML (``nvidia-ml-py``, imported only here and only when sampling
starts); no library or no GPU means no GPU metrics, quietly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("trackd.daemon")
MIB = 1 << 20


class Gpus:
    """The machine's NVIDIA GPUs, opened once per daemon."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def open(cls) -> Gpus | None:
        """NVML's GPUs, or None (no ``nvidia-ml-py``, no driver, no GPU)."""
        try:
            import pynvml  # type: ignore[import-not-found, unused-ignore]

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:  # ImportError, NVMLError_* (no driver, no library)
            log.info("no GPU metrics: %s", exc or type(exc).__name__)
            return None
        if not handles:
            return None
        log.info("GPU metrics from NVML for %d GPU(s)", len(handles))
        return cls(pynvml, handles)

    def sample(self) -> dict[str, float]:
        """``system/gpu.<i>.<metric>`` for each GPU; a metric the GPU does not report is left out."""
        nvml = self._nvml
        out: dict[str, float] = {}
        for i, handle in enumerate(self._handles):
            prefix = f"system/gpu.{i}."
            util = _read(nvml.nvmlDeviceGetUtilizationRates, handle)
            if util is not None:
                out[prefix + "gpu"] = float(util.gpu)
                out[prefix + "memory"] = float(util.memory)
            mem = _read(nvml.nvmlDeviceGetMemoryInfo, handle)
            if mem is not None and mem.total:
                out[prefix + "memory_allocated"] = 100.0 * mem.used / mem.total
                out[prefix + "memory_used_mb"] = mem.used / MIB
            temp = _read(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
            if temp is not None:
                out[prefix + "temp"] = float(temp)
            power = _read(nvml.nvmlDeviceGetPowerUsage, handle)  # milliwatts
            limit = _read(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
            if power is not None:
                out[prefix + "power_watts"] = power / 1000.0
                if limit:
                    out[prefix + "power_percent"] = 100.0 * power / limit
        return out

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down; nothing to do about it
            pass


def _read(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and kin: leave the metric out
        return None
