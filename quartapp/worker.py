"""``python -m quartapp mail-worker``: sends the mail that requests put on the queue.

It builds the app as a web process would (settings, Redis, MySQL, templates) and runs a
SAQ worker on the mail queue inside the app's context. Stop it with SIGTERM or Ctrl-C:
it finishes the jobs it has (for up to a job's timeout) and exits. Any number of workers
may run, on any machines that reach the queue's Redis.
"""

from __future__ import annotations

import asyncio
import logging

from saq import Worker
from saq.types import Context, PartialTimersDict

# Seconds between sweeps for the jobs of workers that died: such a job goes back on the
# queue at the first sweep after its timeout.
SWEEP_EVERY = 10
# Mails one worker sends at once.
CONCURRENCY = 4


async def run_worker() -> None:
    from quartapp import create_app
    from quartapp.accounts.mailings import JOBS
    from quartapp.engine.saq_queue import MailQueue
    from quartapp.mail.queue import WORKER_INFO_TTL, connect, job_timeout

    app = create_app()
    config = app.config
    async with app.app_context():
        await app.startup()
        redis, sentinel = connect(str(config["MAIL_REDIS_URL"]), timeout=None)
        queue = MailQueue(redis, str(config["REDIS_PREFIX"]))
        timers: PartialTimersDict = {
            "sweep": SWEEP_EVERY,
            "worker_info": WORKER_INFO_TTL // 3,
            "schedule": 1,
            "abort": 1,
        }
        worker: Worker[Context] = Worker(
            queue,
            functions=JOBS,  # type: ignore[arg-type]
            concurrency=CONCURRENCY,
            timers=timers,
            dequeue_timeout=5.0,
            shutdown_grace_period_s=job_timeout(float(config["MAIL_TIMEOUT"])),
        )
        try:
            await worker.start()
        finally:
            await queue.disconnect()
            if sentinel is not None:
                await sentinel.aclose()
            await app.shutdown()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_worker())
    return 0
