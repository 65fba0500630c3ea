"""Run metadata (meta.json) and a background sampler of clocks, power and temperature.

The sampler reads NVML (``pynvml``, from the nvidia-ml-py package) every ``period_s`` and falls
back to ``nvidia-smi --query-gpu ... -lms``. It only reads: clocks and power limits are never changed.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from simulator.errors import InputError

from .io import CsvLog

#: torch device-name patterns -> GPU profile names (hwprofiles/<name>.yaml).
GPU_NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"H100 80GB HBM3$", "h100-sxm"),
    (r"H100 SXM", "h100-sxm"),
    (r"H200$", "h200-sxm"),
    (r"H200 SXM", "h200-sxm"),
)
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def profile_name_for(device_name: str) -> str | None:
    """The GPU profile name for a device name such as 'NVIDIA H100 80GB HBM3', or None if unknown."""
    for pattern, name in GPU_NAME_RULES:
        if re.search(pattern, device_name.strip()):
            return name
    return None


def check_name(name: str) -> str:
    """Validate a user-given GPU name (used as a folder name)."""
    if not NAME_RE.match(name):
        raise InputError("--name", name, "use lowercase letters, digits, '.', '_' or '-' (e.g. my-gpu)")
    return name


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _nvml() -> Any | None:
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        return pynvml
    except Exception:
        return None


class PowerSampler:
    """Samples SM/memory clock, power, temperature and utilisation of one GPU into power.csv."""

    def __init__(self, log: CsvLog, index: int = 0, period_s: float = 0.2) -> None:
        self.log = log
        self.index = index
        self.period_s = period_s
        self.phase = "start"
        self.latest: dict[str, float | None] = {}
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._nv = _nvml()
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self.backend = "nvml" if self._nv else ("nvidia-smi" if shutil.which("nvidia-smi") else "none")

    def read(self) -> dict[str, float | None]:
        """One sample via NVML (empty dict without NVML)."""
        nv = self._nv
        if nv is None:
            return {}
        h = nv.nvmlDeviceGetHandleByIndex(self.index)
        out: dict[str, float | None] = {}
        for key, call in (
            ("sm_clock_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
            ("mem_clock_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
            ("power_w", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
            ("temp_c", lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            ("util_pct", lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu),
            ("throttle_reasons", lambda: nv.nvmlDeviceGetCurrentClocksThrottleReasons(h)),
        ):
            try:
                out[key] = float(call())
            except Exception:
                out[key] = None
        return out

    def static_info(self) -> dict[str, Any]:
        """Driver version, max clocks and power limit, read once."""
        nv = self._nv
        info: dict[str, Any] = {"sampler": self.backend}
        if nv is not None:
            h = nv.nvmlDeviceGetHandleByIndex(self.index)
            for key, call in (
                ("driver", lambda: nv.nvmlSystemGetDriverVersion()),
                ("max_sm_clock_mhz", lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM)),
                ("max_mem_clock_mhz", lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_MEM)),
                ("power_limit_w", lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0),
            ):
                try:
                    v = call()
                    info[key] = v.decode() if isinstance(v, bytes) else v
                except Exception:
                    info[key] = None
        elif shutil.which("nvidia-smi"):
            q = "driver_version,clocks.max.sm,clocks.max.mem,power.limit"
            try:
                line = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader,nounits",
                                       "-i", str(self.index)], capture_output=True, text=True, check=False,
                                      timeout=20).stdout.strip().splitlines()[0]
                vals = [v.strip() for v in line.split(",")]
                info.update(driver=vals[0], max_sm_clock_mhz=vals[1], max_mem_clock_mhz=vals[2],
                            power_limit_w=vals[3])
            except Exception:
                pass
        info["at_start"] = self.read() if nv is not None else None
        return info

    def _record(self, sample: dict[str, float | None]) -> None:
        row = {"t_s": round(time.perf_counter() - self._t0, 3), "phase": self.phase, **sample}
        self.latest = sample
        self.samples.append(row)
        self.log.append(row)

    def _loop_nvml(self) -> None:
        while not self._stop.is_set():
            self._record(self.read())
            self._stop.wait(self.period_s)

    def _loop_smi(self) -> None:
        q = "clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu"
        self._proc = subprocess.Popen(
            ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader,nounits", "-i", str(self.index),
             "-lms", str(int(self.period_s * 1000))], stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if self._stop.is_set():
                break
            try:
                v = [float(x) for x in line.split(",")]
            except ValueError:
                continue
            self._record(dict(zip(("sm_clock_mhz", "mem_clock_mhz", "power_w", "temp_c", "util_pct"), v)))

    def start(self) -> None:
        target = {"nvml": self._loop_nvml, "nvidia-smi": self._loop_smi}.get(self.backend)
        if target is not None:
            self._thread = threading.Thread(target=target, name="power-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def clock_row(self) -> dict[str, float | None]:
        """Latest SM clock and power, for the row being written."""
        return {"sm_clock_mhz": self.latest.get("sm_clock_mhz"), "power_w": self.latest.get("power_w")}

    def window(self, since_t: float) -> list[dict[str, Any]]:
        """Samples taken after ``since_t`` seconds from the sampler's start."""
        return [s for s in self.samples if s["t_s"] >= since_t]

    def now(self) -> float:
        return time.perf_counter() - self._t0


def versions() -> dict[str, str | None]:
    """torch / CUDA / transformers / numpy versions, where importable."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    try:
        import torch
    except ImportError:
        return {**out, "torch": None}
    out["torch"] = torch.__version__
    out["cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        for key, call in (("cudnn", lambda: torch.backends.cudnn.version()),
                          ("nccl", lambda: torch.cuda.nccl.version())):
            try:
                v = call()
                out[key] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
            except Exception:
                out[key] = None
    for mod in ("transformers", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            out[mod] = None
    return out


def device_info(device: str) -> dict[str, Any]:
    """Name, memory, multiprocessors, L2 size and compute capability of GPU 0 (or the CPU)."""
    if device != "cuda":
        return {"name": platform.processor() or platform.machine(), "kind": "cpu"}
    import torch

    p = torch.cuda.get_device_properties(0)
    return {"name": p.name, "kind": "gpu", "count": torch.cuda.device_count(),
            "memory_bytes": int(p.total_memory), "multiprocessors": p.multi_processor_count,
            "l2_bytes": int(getattr(p, "L2_cache_size", 0)) or None,
            "compute_capability": f"{p.major}.{p.minor}"}


def base_meta(name: str, device: str, argv: list[str]) -> dict[str, Any]:
    return {"gpu": name, "device": device_info(device), "versions": versions(),
            "started_utc": utc_now(), "command": " ".join([sys.executable, "-m", "calibration", *argv]),
            "host": socket.gethostname(), "platform": platform.platform()}


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """Write meta.json; an earlier run's metadata in the same folder is kept under 'previous_runs'."""
    path = Path(path)
    if path.exists() and "started_utc" in meta and not meta.get("previous_runs"):
        try:
            old = json.loads(path.read_text())
            if old.get("started_utc") != meta["started_utc"]:
                prev = old.pop("previous_runs", [])
                meta["previous_runs"] = [*prev, old]
        except (json.JSONDecodeError, OSError):
            pass
    path.write_text(json.dumps(meta, indent=2, default=str) + "\n")
