"""Readiness: whether this process can serve (Redis answers, the configuration is complete)."""
from __future__ import annotations

from otpservice.config import Settings
from otpservice.errors import StoreUnavailable
from otpservice.storage.verifications import VerificationStore


class Readiness:
    """The checks /readyz reports, each `ok` or what is wrong."""

    def __init__(self, *, settings: Settings, store: VerificationStore) -> None:
        self.settings = settings
        self.store = store

    def check(self) -> tuple[bool, dict[str, str]]:
        checks = {}
        try:
            self.store.ping()
            checks["redis"] = "ok"
        except StoreUnavailable:
            checks["redis"] = "unavailable"
        missing = self.settings.missing_secrets() if self.settings.production else []
        checks["config"] = "ok" if not missing else "missing: " + ", ".join(missing)
        return all(value == "ok" for value in checks.values()), checks
