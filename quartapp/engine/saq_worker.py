"""SAQ: a mail worker that stops at once when told to (``MailWorker``).

Replaces ``Worker.upkeep``'s loops' way of stopping. In SAQ 0.26 each upkeep loop (sweep,
worker report, schedule, abort) sleeps out its period before it looks whether the worker
stops, and a stop waits for them: an idle worker took up to its sweep period (10 s) to exit,
more than ``python -m quartapp serve`` gives a child before it kills it. Here one more task
cancels the loops when the worker's stop event is set.

Private names read: none with an underscore, but two undocumented parts of ``saq.Worker``:
``upkeep()`` (that it returns the loops' tasks) and ``event`` (the stop event ``start``
makes before ``upkeep`` runs).

Buys: no instructions (not on a page's path); a stop of an idle worker in about a second
instead of up to ten (``tests/test_serve.py``).

Delete when: SAQ's upkeep loops wake on the stop event themselves.
"""

from __future__ import annotations

import asyncio

from saq import Worker
from saq.types import Context


class MailWorker(Worker[Context]):
    """SAQ's worker, whose upkeep loops end as soon as it is told to stop."""

    async def upkeep(self) -> list[asyncio.Task[None]]:
        tasks = await super().upkeep()

        async def cancel_on_stop() -> None:
            await self.event.wait()
            for task in tasks:
                task.cancel()

        return [*tasks, asyncio.create_task(cancel_on_stop())]
