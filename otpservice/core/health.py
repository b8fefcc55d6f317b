"""Readiness: whether this process can serve (Redis answers and keeps what it is given, the configuration is
complete)."""
from __future__ import annotations

from otpservice.config import Settings
from otpservice.errors import StoreUnavailable
from otpservice.storage.verifications import VerificationStore


# Under any other policy a full Redis evicts keys instead of refusing writes: a live code, a cooldown, a send
# budget or a number's failure log could vanish (the service's every key has an expiry, so volatile-* policies
# may evict all of them too), and a limit would be reset without anyone asking.
REQUIRED_POLICY = "noeviction"


def redis_problems(settings: Settings, store: VerificationStore) -> dict[str, str]:
    """What is wrong with the Redis the service uses (maxmemory-policy, replicas to wait for), by check name."""
    policies, replicas = store.server_settings()
    problems = {}
    if policies != {REQUIRED_POLICY}:
        problems["redis_eviction"] = (f"maxmemory-policy is {', '.join(sorted(policies))}: set "
                                      f"maxmemory-policy {REQUIRED_POLICY}")
    if replicas < settings.wait_replicas:
        problems["redis_replicas"] = (f"a master has {replicas} replica(s), OTP_REDIS_WAIT_REPLICAS needs "
                                      f"{settings.wait_replicas}: every reservation and spend is refused")
    return problems


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
            problems = redis_problems(self.settings, self.store) if self.settings.redis_url else {}
            checks["redis_eviction"] = problems.get("redis_eviction", "ok")
            checks["redis_replicas"] = problems.get("redis_replicas", "ok")
        except StoreUnavailable:
            checks["redis"] = "unavailable"
        missing = self.settings.missing_secrets() if self.settings.production else []
        checks["config"] = "ok" if not missing else "missing: " + ", ".join(missing)
        return all(value == "ok" for value in checks.values()), checks
