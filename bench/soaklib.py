"""Memory probes for the soak commands (``bench.flap_soak``, ``bench.kill_soak``, ``bench.outage_soak``).

What the soaks report comes from outside the agent: the broker-side stream
(``tests.support.seqcheck``) and the kernel's view of the process's memory (/proc).
"""

from __future__ import annotations

from pathlib import Path


def memory(pid: int) -> dict[str, float]:
    """RSS and its anonymous / file-backed parts (MB) from /proc/PID/smaps_rollup."""
    out: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("Rss:", "Anonymous:", "Shared_Clean:", "Private_Clean:", "Private_Dirty:"):
            out[parts[0].rstrip(":").lower()] = int(parts[1]) / 1024
    out["file"] = out.get("rss", 0) - out.get("anonymous", 0)
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        out["threads"] = float(next(int(x.split()[1]) for x in status.splitlines() if x.startswith("Threads:")))
    except (OSError, StopIteration):
        pass
    return out


def slope_kb_per_cycle(samples: list[float]) -> float:
    """Least-squares slope of a series (MB per step) in KB per step."""
    n = len(samples)
    if n < 2:
        return 0.0
    mx = (n - 1) / 2
    my = sum(samples) / n
    num = sum((i - mx) * (y - my) for i, y in enumerate(samples))
    den = sum((i - mx) ** 2 for i in range(n))
    return num / den * 1024
