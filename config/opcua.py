"""OPC UA settings that are not points: endpoint security, trust, credentials, node-id syntax.

The device model itself (``OpcUaDevice``) lives in ``config/drivers.py`` beside the other
protocols; this module holds what only OPC UA has, so the shared file grows by one model.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from config.types import ConfigPath, StrictModel

#: ``ns=<index>;`` (optional; no ``nsu=`` URIs) then ``i=`` numeric, ``s=`` string, ``g=`` GUID, ``b=`` opaque (base64)
_NODE_ID = re.compile(
    r"^(?:ns=([0-9]{1,5});)?"
    r"(?:i=([0-9]{1,10})|s=[^\x00-\x1f\x7f]+|g=[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|b=[A-Za-z0-9+/=]+)$",
    re.DOTALL,
)
NODE_ID_HELP = "an OPC UA node id such as 'ns=2;s=Hoist.Speed' or 'ns=3;i=1001' (find them: headframe probe opcua URL --browse)"


def check_node_id(text: str) -> str:
    """``text`` if it is node-id syntax; the server still decides whether the node exists."""
    match = _NODE_ID.match(text)
    if not match or int(match.group(1) or 0) > 65535 or int(match.group(2) or 0) > 0xFFFFFFFF:
        raise ValueError(NODE_ID_HELP)
    return text


class OpcUaSecurity(StrictModel):
    """How the gateway secures the channel and whom it trusts.

    ``None`` sends everything in clear (a lab, or a PLC on an isolated cell network). With
    Basic256Sha256 the gateway presents ``certificate``/``private_key`` and refuses a server
    whose certificate is neither ``server_certificate`` nor in ``trust_dir`` (nor signed by a
    CA certificate there): a PLC swapped for an impostor is refused, not talked to.
    """

    policy: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate: ConfigPath | None = Field(default=None, description="the gateway's certificate (DER or PEM)")
    private_key: ConfigPath | None = Field(default=None, description="its private key (PEM or DER)")
    server_certificate: ConfigPath | None = Field(default=None, description="the one server certificate trusted")
    trust_dir: ConfigPath | None = Field(default=None, description="a directory of trusted server or CA certificates")
    #: the gateway's application URI; must match the URI in ``certificate``
    application_uri: str = "urn:headframe:gateway"

    @model_validator(mode="after")
    def _complete(self) -> OpcUaSecurity:
        if self.policy == "None":
            extra = [k for k in ("certificate", "private_key", "server_certificate", "trust_dir") if getattr(self, k)]
            if extra:
                raise ValueError(f"policy Basic256Sha256 to use {', '.join(extra)} (policy None sends no certificates)")
            return self
        if self.certificate is None or self.private_key is None:
            raise ValueError(f"'certificate' and 'private_key' (the gateway's) for policy {self.policy}")
        if self.server_certificate is None and self.trust_dir is None:
            raise ValueError("'server_certificate' or 'trust_dir': which server certificate to trust (never any)")
        return self


class OpcUaLogin(StrictModel):
    """A user name and where its password comes from; the password itself is never in the config."""

    username: str = Field(min_length=1)
    password_file: ConfigPath | None = Field(default=None, description="a file holding only the password (mode 0600)")
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="an environment variable")
    #: with ``security.policy: None`` the password would go in clear to whatever answers at the
    #: endpoint (no server certificate is checked): refused unless this says it is meant (a lab)
    allow_cleartext_password: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> OpcUaLogin:
        if (self.password_file is None) == (self.password_env is None):
            raise ValueError("exactly one of 'password_file' or 'password_env' (never the password itself)")
        return self


#: how values reach the gateway: the server pushes changes, or the gateway reads each interval
OpcUaMode = Literal["subscribe", "poll"]
