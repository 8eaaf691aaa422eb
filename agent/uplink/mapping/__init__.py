"""Platform mappings: topic and payload templates per record kind (docs/mqtt.md, "Platform mappings").

The language and its checks live in ``config.template`` / ``config.mapping`` (so ``headframe
check`` refuses a bad template); this package runs compiled templates on leased records.
"""

from agent.uplink.mapping.formatter import MappingFormatter, build_formatter, render

__all__ = ["MappingFormatter", "build_formatter", "render"]
