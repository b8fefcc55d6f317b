"""Send budgets not keyed by a number (client IP, number prefix, country, global, and the fraud guard's device and
user velocity), as sliding logs in Redis.

Each budget is its own key with its own hash tag (keys.budget), run by lua/rate_hit.lua: exact at any
instant, so it trips at exactly its amount and the wait is when the oldest send that counts leaves the
window. The budgets of one request are taken together in one pipelined round trip; each is atomic on its
own, so parallel requests never exceed one. The per-number budgets live in the number's hash instead
(begin_send.lua), taken in the same step that reserves the send.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otpservice.storage import keys
from otpservice.storage.connect import StoreBase, guarded
from otpservice.storage.scripts import Scripts


class BudgetStore(StoreBase):
    """Take one send from several budgets at once, and give them back."""

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.scripts = Scripts(client, ("rate_hit",))

    @staticmethod
    def key(scope: str, value: str) -> str:
        return keys.budget(scope, value)

    @guarded
    def take(self, hits: Sequence[tuple[str, int, int]], token: str, now_ms: int) -> list[int]:
        """Take one send from each (key, amount, window ms); per hit, 0 when taken or the wait in ms when refused."""
        if not hits:
            return []
        results = self.scripts.run_many([("rate_hit", [key], [now_ms, window_ms, amount, token, "1"])
                                         for key, amount, window_ms in hits])
        return [0 if int(ok) else max(1, int(wait)) for ok, wait in results]

    @guarded
    def spent(self, key: str, amount: int, window_ms: int, now_ms: int) -> int:
        """0 while the budget has one left (nothing taken), else the wait in ms until it has."""
        ok, wait = self.scripts.run("rate_hit", [key], [now_ms, window_ms, amount, "", "0"])
        return 0 if int(ok) else max(1, int(wait))

    @guarded
    def refund(self, budget_keys: Sequence[str], token: str) -> None:
        """Give back the sends one request took (its token in each log)."""
        if budget_keys:
            pipe = self.redis.pipeline(transaction=False)
            for key in budget_keys:
                pipe.zrem(key, token)
            pipe.execute()
