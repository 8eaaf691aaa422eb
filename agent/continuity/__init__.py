"""Continuity evidence: gap records, the gateway-dark alarm and the configuration audit."""

from agent.continuity.config_audit import AppliedConfig, changed_keys, describe
from agent.continuity.tracker import ContinuityTracker, state_path_for

__all__ = ["AppliedConfig", "ContinuityTracker", "changed_keys", "describe", "state_path_for"]
