"""Failure budgets per client: past a number of failures in a window (wrong codes on /verify, failed admin
authentications), the client is refused (429 with Retry-After) before anything is checked, so guessing from
one address runs at the budget's pace whatever the per-code and per-number caps allow."""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from otpservice.core.sendgate import Rate
from otpservice.errors import RateLimited
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.storage.budgets import BudgetStore

log = logging.getLogger(__name__)


class FailureBudget:
    """`check` a client before the attempt, `fail` it after a failed one."""

    def __init__(self, *, budgets: BudgetStore, rate: Rate, scope: str, clock: Callable[[], float] = time.time,
                 metrics: Metrics | NullMetrics | None = None) -> None:
        self.budgets = budgets
        self.rate = rate  # rate.name: the policy a refusal names (vocabulary.LIMIT_POLICIES)
        self.scope = scope
        self.clock = clock
        self.metrics = metrics or NullMetrics()

    def check(self, client: str, **context: str) -> None:
        """Raise RateLimited (logged and counted) when `client` spent its failures; `context` goes to the log."""
        wait = self.budgets.spent(BudgetStore.key(self.scope, client), self.rate.amount, self.rate.window_ms,
                                  int(self.clock() * 1000))
        if wait:
            self.metrics.throttled(self.rate.name)
            log.warning("refused: too many failures from one client",
                        extra={"policy": self.rate.name, "client": client, **context})
            raise RateLimited(self.rate.name, -(-wait // 1000), "Too many failed attempts from this client: "
                              "try again later.")

    def fail(self, client: str) -> None:
        """Count one failure of `client`."""
        self.budgets.take([(BudgetStore.key(self.scope, client), self.rate.amount, self.rate.window_ms)],
                          uuid.uuid4().hex, int(self.clock() * 1000))
