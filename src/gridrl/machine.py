"""The machine: what a number was measured on (evaluations and benchmarks name it the same way),
and where its compiled programs are kept."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform says."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def use_compilation_cache() -> None:
    """Keep compiled programs on disk between runs ($XDG_CACHE_HOME/gridrl/jax unless a cache is
    already set): a second run of the same program skips most of the minutes of compilation a
    2-core CPU spends on the first."""
    import jax

    if jax.config.jax_compilation_cache_dir is None:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        jax.config.update("jax_compilation_cache_dir", str(cache / "gridrl" / "jax"))
