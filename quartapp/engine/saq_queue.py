"""SAQ: the mail queue's keys under the app's prefix (``MailQueue``).

Replaces ``RedisQueue.namespace``, ``job_id`` and ``job_key_from_id`` (SAQ names its keys
``saq:<queue>:...``; here they start with the app's ``REDIS_PREFIX`` like every other key),
and SAQ's Pub/Sub multiplexer, made again for the prefixed job ids.

Private names written: ``RedisQueue._pubsub`` (SAQ makes it in ``__init__`` for its own
prefix; ``saq.queue.redis.PubSubMultiplexer`` is public, its ``prefix`` argument too).

Buys: no instructions (not on a page's path; ``enqueue`` runs on sign-up and mail requests
only). It keeps every key of the app under one prefix, which tests and several apps on one
Redis rely on.

Delete when: SAQ takes a key prefix (its ``RedisQueue`` has a ``name`` only, up to 0.26).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from saq.queue.redis import PubSubMultiplexer, RedisQueue

QUEUE_NAME = "mail"


class MailQueue(RedisQueue):
    """SAQ's Redis queue with every key under the app's prefix."""

    def __init__(self, redis: Redis, prefix: str, **kwargs: Any) -> None:
        self.key_prefix = prefix
        super().__init__(redis, name=QUEUE_NAME, **kwargs)
        self._pubsub = PubSubMultiplexer(redis.pubsub(), prefix=self.job_id(""))

    def namespace(self, key: str) -> str:
        return f"{self.key_prefix}{self.name}:{key}"

    def job_id(self, job_key: str) -> str:
        return f"{self.key_prefix}{self.name}:job:{job_key}"

    def job_key_from_id(self, job_id: str) -> str:
        return job_id[len(self.job_id("")) :]

    def sent_key(self, job_key: str) -> str:
        """Written once the SMTP server acknowledged this job's mail."""
        return self.namespace(f"sent:{job_key}")

    def sending_key(self, job_key: str) -> str:
        """Held while a worker talks to SMTP about this job's mail."""
        return self.namespace(f"sending:{job_key}")
