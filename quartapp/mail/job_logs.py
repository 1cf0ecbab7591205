"""What the logs say about mail jobs: their ids, kinds and attempts, never their arguments
(addresses, IP addresses, device names), and one line per failed attempt.

SAQ logs every job with its arguments at INFO ("Enqueuing", "Processing", "Retrying",
"Finished") and each failed attempt with its traceback and the job's whole record, the last
attempt's traceback included: 100 notices during an SMTP outage wrote 5.2 MB of log in two
minutes, full of addresses. Through logging's public interface, a filter on SAQ's logger
drops those records, and SAQ's public ``after_process`` hook of the worker writes one line
per attempt instead. SAQ's other records (start-up, sweeps, upkeep faults) pass unchanged.
"""

from __future__ import annotations

import logging

from saq.job import Job
from saq.types import Context

log = logging.getLogger("quartapp.mail.jobs")

SAQ_LOGGER = "saq"
# The messages of SAQ's records whose argument is a job's whole description (``Job.info``),
# arguments included. (As of SAQ 0.26; a record that carries a Job object is dropped too.)
JOB_DESCRIPTIONS = frozenset(
    {"Enqueuing %s", "Processing %s", "Retrying %s", "Finished %s", "Error processing job %s"}
)


class WithoutJobDetails(logging.Filter):
    """Drops SAQ's records that describe a job in full, and cuts any other record of SAQ's
    that carries an exception down to one line naming the exception's kind: an upkeep fault
    (say, a sweep that finds a finished job already deleted) is logged with a traceback whose
    message holds the job's whole description. See the module's docstring."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in JOB_DESCRIPTIONS:
            return False
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        if any(isinstance(arg, Job) for arg in args):
            return False
        if record.exc_info and record.exc_info[1] is not None:
            kind = type(record.exc_info[1]).__name__
            record.msg = f"{record.getMessage()}: {kind}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def keep_job_details_out_of_logs() -> None:
    """Install the filter on SAQ's logger (once, however often it is called)."""
    saq = logging.getLogger(SAQ_LOGGER)
    if not any(isinstance(known, WithoutJobDetails) for known in saq.filters):
        saq.addFilter(WithoutJobDetails())


def _error_summary(error: BaseException) -> str:
    """The error's kind (and its cause's) and, for an SMTP answer, its code: never its
    text, which may quote the recipient's address."""
    kinds: list[str] = []
    seen: BaseException | None = error
    while seen is not None and len(kinds) < 3:
        code = getattr(seen, "smtp_code", None)
        kinds.append(
            f"{type(seen).__name__} {code}" if isinstance(code, int) else type(seen).__name__
        )
        seen = seen.__cause__
    return " from ".join(kinds)


async def log_job_outcome(ctx: Context) -> None:
    """SAQ's ``after_process`` hook: one line per attempt, by job id and kind."""
    job: Job | None = ctx.get("job")
    if job is None:
        return
    error = ctx.get("exception")
    what = f"mail job {job.key} ({job.function}) attempt {job.attempts} of {job.retries}"
    if error is not None:
        outcome = "will be retried" if job.retryable else "gave up"
        log.warning("%s failed: %s; %s", what, _error_summary(error), outcome)
    elif job.status.name.lower() == "complete":
        log.info("%s: %s", what, job.result)
    else:
        log.info("%s ended %s", what, job.status.name.lower())
