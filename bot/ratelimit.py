"""A per-user sliding-window limit, so one person's burst of photos cannot crowd out everyone else."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

_PRUNE_ABOVE = 10_000


class UserRateLimiter:
    def __init__(self, limit: int, period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.period = period
        self._clock = clock
        self._hits: dict[int, deque[float]] = {}

    def allow(self, user_id: int) -> bool:
        """Count one request for `user_id`; False when it is over `limit` within the last `period` s."""
        now = self._clock()
        hits = self._hits.setdefault(user_id, deque())
        while hits and now - hits[0] >= self.period:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        if len(self._hits) > _PRUNE_ABOVE:
            self._hits = {u: h for u, h in self._hits.items() if h and now - h[-1] < self.period}
        return True
