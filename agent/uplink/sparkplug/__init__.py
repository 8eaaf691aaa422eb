"""Sparkplug B output (``uplink.format: sparkplug``), imported only when configured.

``node`` (the edge node: births, deaths, seq, NCMD), ``metrics`` (points -> metrics, quality),
``schema`` (the payload's protobuf messages), ``bdseq`` (the birth/death number on disk).
"""

from agent.uplink.sparkplug.node import SparkplugFormatter

__all__ = ["SparkplugFormatter"]
