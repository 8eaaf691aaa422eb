"""Power and boot as evidence: boot id/count, how the last run ended, mains/UPS state (issue 10)."""

from agent.power.boot import build_start_evidence
from agent.power.monitor import PowerMonitor, build_monitor
from agent.power.runstate import RunState

__all__ = ["PowerMonitor", "RunState", "build_monitor", "build_start_evidence"]
