"""How a value from a configuration file is shown in a one-line error.

Configuration errors are one line each (a log line, a CI annotation): a key or
value the user wrote may hold a newline or be very long, so it is shown as its
repr, cut short. config, ignores and custom_queries all report through these.
"""

from __future__ import annotations

import re
from typing import Any

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def show(value: Any, limit: int = 60) -> str:
    """A value as an error message shows it: repr (no raw newlines), cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key(name: Any) -> str:
    """A mapping key as an error's path shows it: plain keys bare, any other as its short repr."""
    return name if isinstance(name, str) and _PLAIN_KEY.fullmatch(name) else show(name, 40)
