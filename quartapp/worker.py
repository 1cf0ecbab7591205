"""``python -m quartapp mail-worker``: sends the mail that requests put on the queue.

It builds the app as a web process would (settings, Redis, MySQL, templates) and runs a
SAQ worker on the mail queue inside the app's context. Stop it with SIGTERM or Ctrl-C:
it finishes the jobs it has (for up to a job's timeout) and exits. Any number of workers
may run, on any machines that reach the queue's Redis; ``python -m quartapp serve`` runs
``QUARTAPP_MAIL_WORKERS`` of them beside the web server (quartapp/serve.py).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from saq.types import PartialTimersDict

if TYPE_CHECKING:
    from quartapp.engine.quart_request_cycle import Application

# Seconds between sweeps for the jobs of workers that died: such a job goes back on the
# queue at the first sweep after its timeout.
SWEEP_EVERY = 10
# Mails one worker sends at once.
CONCURRENCY = 4
# Seconds each of those waits for a job before it looks again. A stop waits for the waits
# under way, so this bounds how long an idle worker takes to stop: ``serve`` kills what
# has not stopped within its STOP_GRACE.
DEQUEUE_TIMEOUT = 1.0


async def run_worker(app: Application) -> None:
    from quartapp.accounts.mailings import JOBS
    from quartapp.engine.saq_queue import MailQueue
    from quartapp.engine.saq_worker import MailWorker
    from quartapp.mail.job_logs import log_job_outcome
    from quartapp.mail.queue import WORKER_INFO_EVERY, connect, job_timeout

    config = app.config
    async with app.app_context():
        await app.startup()
        redis, sentinel = connect(str(config["MAIL_REDIS_URL"]), timeout=None)
        queue = MailQueue(redis, str(config["REDIS_PREFIX"]))
        timers: PartialTimersDict = {
            "sweep": SWEEP_EVERY,
            "worker_info": WORKER_INFO_EVERY,
            "schedule": 1,
            "abort": 1,
        }
        worker = MailWorker(
            queue,
            functions=JOBS,  # type: ignore[arg-type]
            concurrency=CONCURRENCY,
            timers=timers,
            dequeue_timeout=DEQUEUE_TIMEOUT,
            shutdown_grace_period_s=job_timeout(float(config["MAIL_TIMEOUT"])),
            after_process=log_job_outcome,  # one line per attempt (mail/job_logs.py)
        )
        try:
            await worker.start()
        finally:
            await queue.disconnect()
            if sentinel is not None:
                await sentinel.aclose()
            await app.shutdown()


def main() -> int:
    """Build the app (a missing or bad setting: one line naming it, status 1), then work."""
    from quartapp import create_app
    from quartapp.config import ConfigError
    from quartapp.mail.job_logs import keep_job_details_out_of_logs

    try:
        app = create_app()
    except ConfigError as error:
        print(f"quartapp: {' '.join(str(error).splitlines())}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    keep_job_details_out_of_logs()
    asyncio.run(run_worker(app))
    return 0
