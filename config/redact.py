"""Credentials out of camera URLs before they are printed anywhere.

Cameras are configured as ``rtsp://user:password@host/path`` or with ``?token=…`` in the
query; the URL is the natural thing to print when a stream cannot be opened, so every
message, health reason and record that may carry one goes through ``redact`` first.
It lives in ``config`` (which imports nothing of ours) so config error messages, which quote
the offending input, can use it as well as vision and anything that prints an endpoint.
"""

from __future__ import annotations

import re

#: userinfo of any URL in the text: ``scheme://user:password@`` (greedy to the last ``@`` of the authority)
_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")
#: query or fragment parameters that carry secrets, by name (case-insensitive)
_SECRET_PARAM = re.compile(
    r"(?i)(?<=[?&;#])((?:password|passwd|pass|pwd|token|access_token|auth|authorization|key|api_key|apikey"
    r"|secret|signature|sig|credentials?|user|username|login)=)[^&;#\s]*"
)

MASK = "***"


def redact(text: str) -> str:
    """``text`` with URL credentials masked: ``rtsp://***@host/x?token=***``. Idempotent."""
    if "://" not in text and "=" not in text:
        return text
    return _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, _USERINFO.sub(MASK + "@", text))
