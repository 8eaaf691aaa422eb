"""Settings of the Sparkplug B output (``uplink.format: sparkplug``; docs/mqtt.md, "Sparkplug B").

The ids become topic levels ``spBv1.0/{group_id}/{type}/{edge_node_id}[/{device_id}]``: the
Sparkplug B specification forbids ``/``, ``+`` and ``#`` in them (they would split or match
topic levels); we also refuse spaces and control characters, which hosts display badly.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from config.types import Duration, StrictModel

_ID = re.compile(r"[^/+#\s\x00-\x1f\x7f]{1,64}")


def _sparkplug_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(
            "a Sparkplug topic id: 1 to 64 characters without '/', '+', '#', spaces or control characters "
            "(they would split or match the levels of spBv1.0/<group_id>/<type>/<edge_node_id>)"
        )
    return value


#: A Sparkplug topic id: UTF-8, no ``/``, ``+``, ``#``, no white space or control characters.
SparkplugId = Annotated[str, AfterValidator(_sparkplug_id)]


class SparkplugSettings(StrictModel):
    """Who this gateway is in the Sparkplug namespace; unset ids default to the gateway's."""

    #: Sparkplug group (unset: ``gateway.site``).
    group_id: SparkplugId | None = None
    #: Sparkplug edge node (unset: ``gateway.id``).
    edge_node_id: SparkplugId | None = None
    #: A primary host application (Sparkplug 3.0): publish only while its retained
    #: ``spBv1.0/STATE/<id>`` says ``{"online": true}``; when it goes offline, disconnect (the
    #: NDEATH is published) and wait; readings stay in the buffer meanwhile. Unset: no host to wait for.
    primary_host_id: SparkplugId | None = None
    #: Rebirth requests (NCMD ``Node Control/Rebirth``) closer together than this are ignored
    #: (logged): a host stuck in a loop must not turn the uplink into a birth generator.
    min_rebirth_interval: Duration = Field(default=1.0, ge=0.0, le=60.0)
