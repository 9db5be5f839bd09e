"""Keep secrets out of everything we print, log or write.

Tokens are registered as soon as they are read from the environment; every message that
leaves the process goes through `redact`.
"""

from __future__ import annotations

import os

_SECRETS: set[str] = set()
SECRET_ENV = ("CIRCLECI_TOKEN", "CIRCLE_TOKEN", "GITHUB_TOKEN")


def register_secret(value: str | None) -> None:
    if value and len(value) >= 4:
        _SECRETS.add(value)


def _from_env() -> None:
    for name in SECRET_ENV:
        register_secret(os.environ.get(name))


def redact(text: str) -> str:
    _from_env()
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
