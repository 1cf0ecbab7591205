"""A few threads that run work by priority, from queues of bounded length.

``concurrent.futures.ThreadPoolExecutor`` has one unbounded first-come queue: many clients,
each within its own limit, could make everyone's password work wait behind theirs without
end. Here each kind of work has a lane of its own, the threads always take the first lane
that has work, and a lane whose queue is full refuses more at once (``PoolBusy``), so a
flood of what matters little neither delays what matters nor piles up."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class PoolBusy(Exception):
    """The queue of this lane is full: the work was refused, not queued."""


_Job = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...]]


class PriorityPool:
    """``threads`` threads; lane 0 goes first, then lane 1, and so on. ``queue_limits[n]``
    is how many jobs of lane n may wait (not counting those running)."""

    def __init__(
        self,
        threads: int,
        queue_limits: Sequence[int],
        *,
        name: str,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        self._limits = list(queue_limits)
        self._lanes: list[deque[_Job]] = [deque() for _ in self._limits]
        self._condition = threading.Condition()
        self._closed = False
        self._initializer = initializer
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def waiting(self, lane: int) -> int:
        """How many jobs of ``lane`` wait for a thread (cancelled ones included until
        they are dropped)."""
        with self._condition:
            return len(self._lanes[lane])

    def submit(self, lane: int, func: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``func(*args)`` in ``lane``; raises PoolBusy at once if its queue is full."""
        future: Future[T] = Future()
        with self._condition:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            queue = self._lanes[lane]
            if len(queue) >= self._limits[lane]:
                # Waiters that gave up (a cancelled request) hold no place.
                kept = [job for job in queue if not job[0].cancelled()]
                queue.clear()
                queue.extend(kept)
                if len(queue) >= self._limits[lane]:
                    raise PoolBusy()
            queue.append((future, func, args))
            self._condition.notify()
        return future

    async def run(self, lane: int, func: Callable[..., T], *args: Any) -> T:
        """``submit``, awaited; cancelling the wait drops the job if it has not started."""
        return await asyncio.wrap_future(self.submit(lane, func, *args))

    def _next(self) -> _Job | None:
        with self._condition:
            while True:
                for queue in self._lanes:
                    if queue:
                        return queue.popleft()
                if self._closed:
                    return None
                self._condition.wait()

    def _work(self) -> None:
        if self._initializer is not None:
            self._initializer()
        while (job := self._next()) is not None:
            future, func, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = func(*args)
            except BaseException as error:  # handed to the waiter, as the executor does
                future.set_exception(error)
            else:
                future.set_result(result)

    def shutdown(self) -> None:
        """Cancel the jobs still waiting, let the running ones finish, stop the threads."""
        with self._condition:
            self._closed = True
            for queue in self._lanes:
                for future, _, _ in queue:
                    future.cancel()
                queue.clear()
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()
