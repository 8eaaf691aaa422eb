"""The real upsd + dummy-ups server for the power tests: the same runner the simulated site uses."""

from hil.sim.ups import NUT_BIN, NutServer

__all__ = ["NUT_BIN", "NutServer"]
