"""The mail queue: SAQ on Redis. A request enqueues a job and answers; a worker
(``python -m quartapp mail-worker``) sends it.

Topologies. The queue runs on one Redis server or on a Sentinel-managed master, never on a
Redis Cluster: SAQ's scripts and transactions touch several keys that no hash tag keeps in
one slot, and its worker uses Pub/Sub and blocking list moves. Start-up refuses a Cluster
URL (``MAIL_REDIS_URL`` may then name another Redis for the queue alone).

Keys. SAQ names its keys ``saq:<queue>:...``; here they start with the app's
``REDIS_PREFIX`` like every other key (``<prefix>mail:queued``, ``<prefix>mail:job:<key>``),
so one Redis can serve several apps and a test's keys go with its prefix.

Delivery. A job is retried with exponential backoff (jittered, at most a minute apart) for
about an hour while the SMTP server is away. A worker that dies mid-job leaves the job
"active"; any worker's sweep puts it back on the queue once its timeout has passed. A mail
is sent at most once per job: the job's key is written to Redis as soon as the SMTP server
has acknowledged it, and a job that finds its key there does not send again (see
``send_once``). The one window left is between the server's acknowledgement and that write.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

from quart import current_app
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel
from saq.job import Job

from quartapp.engine.saq_queue import MailQueue
from quartapp.infra.extension import ServingExtension
from quartapp.infra.redis_client import parse_redis_url
from quartapp.mail.job_logs import keep_job_details_out_of_logs

log = logging.getLogger(__name__)

EXTENSION = "quartapp.mail"
# Seconds between a worker's reports of itself. SAQ keeps each report one second longer
# than that, so /readyz counts a worker as seen for 11 s after its last report.
WORKER_INFO_EVERY = 10
# Retries while SMTP is down: 1 s, 2 s, 4 s ... then at most every 60 s (each jittered),
# 80 attempts in all: about an hour.
RETRIES = 80
RETRY_DELAY = 1.0
RETRY_MAX_DELAY = 60.0
# How long a finished job's record stays: -1, not at all (SAQ deletes it as the job ends).
# Its arguments name people (addresses, IP addresses, devices); the ``sent`` key already
# keeps a mail from going twice, and the worker's log line says how the job ended.
KEEP_DONE = -1


def connect(url: str, *, timeout: float | None) -> tuple[Redis, Sentinel | None]:
    """A client for the queue's Redis (one server or a Sentinel-managed master).

    ``timeout`` None: no socket timeout, for the worker's blocking reads."""
    target = parse_redis_url(url)
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout or 5,
        "health_check_interval": 30,
    }
    if target.kind == "server":
        return Redis.from_url(target.url, **options), None
    if target.kind == "sentinel":
        sentinel = Sentinel(
            list(target.nodes),
            sentinel_kwargs={
                "username": target.sentinel_username,
                "password": target.sentinel_password,
                "socket_timeout": timeout or 5,
            },
        )
        master = sentinel.master_for(
            target.service,
            db=target.db,
            username=target.username,
            password=target.password,
            **options,
        )
        return cast(Redis, master), sentinel
    raise ValueError("the mail queue does not run on Redis Cluster")


class Mailer(ServingExtension):
    """The app's side of the queue: opened when the app starts serving, closed after."""

    EXTENSION = EXTENSION
    _queue: MailQueue | None = None
    _sentinel: Sentinel | None = None

    async def open(self) -> None:
        keep_job_details_out_of_logs()  # SAQ logs every enqueued job's arguments
        config = current_app.config
        redis, self._sentinel = connect(
            str(config["MAIL_REDIS_URL"]), timeout=float(config["REDIS_TIMEOUT"])
        )
        self._queue = MailQueue(redis, str(config["REDIS_PREFIX"]))

    async def close(self) -> None:
        queue, self._queue = self._queue, None
        if queue is not None:
            await queue.disconnect()
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None:
            await sentinel.aclose()

    @property
    def queue(self) -> MailQueue:
        if self._queue is None:
            raise RuntimeError("the mail queue is used before the app started serving")
        return self._queue

    async def enqueue(self, function: str, **kwargs: Any) -> None:
        """Put a mail job on the queue; a worker runs ``function(**kwargs)``."""
        job = Job(
            function=function,
            kwargs=dict(kwargs),
            retries=RETRIES,
            retry_delay=RETRY_DELAY,
            retry_backoff=RETRY_MAX_DELAY,
            timeout=job_timeout(float(current_app.config["MAIL_TIMEOUT"])),
            ttl=KEEP_DONE,
        )
        await self.queue.enqueue(job)

    async def health(self) -> dict[str, Any]:
        """Workers seen lately and jobs waiting, for /readyz."""
        return await queue_health(self.queue)


def job_timeout(mail_timeout: float) -> int:
    """Seconds a job may run: a connection, TLS, sign-in and the message, each bounded by
    ``MAIL_TIMEOUT``, with room to spare. A dead worker's job is swept after this long."""
    return int(mail_timeout * 3 + 5)


async def queue_health(queue: MailQueue) -> dict[str, Any]:
    redis = queue.redis
    current = int(time.time() * 1000)  # SAQ stamps worker reports with the local clock
    workers = await redis.zcount(queue.namespace("stats"), current, "+inf")
    return {
        "workers": int(workers),
        "queued": int(await redis.llen(queue.namespace("queued"))),
        "waiting": int(await redis.zcard(queue.namespace("incomplete"))),
    }


def get_mailer() -> Mailer:
    mailer: Mailer = current_app.extensions[EXTENSION]
    return mailer


def describe(job_kwargs: Mapping[str, Any]) -> str:
    """Job arguments for a log line, without addresses."""
    return json.dumps(sorted(job_kwargs))
