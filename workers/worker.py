"""The worker process (Procfile: worker): an RQ worker with its scheduler on the mail queue.

Started from here rather than with `rq worker`: rq 1.16's command line declares --serializer
twice and click warns about it at every start; the JSON serializer and our job class are set
in one place (crm.queue) instead of on a command line.
"""

from __future__ import annotations

import argparse

from redis import Redis
from rq import Worker

from crm.config import Config
from crm.queue import JsonJob, mail_queue


def _preload_jobs() -> None:
    """Import the job module and configure the ORM's mappers before RQ forks a work horse per
    job: otherwise every job imports the app (about a second) and configures the mappers on
    its first query (about 50 ms) again."""
    from sqlalchemy.orm import configure_mappers

    import workers.jobs  # noqa: F401

    configure_mappers()


def main(argv: list[str] | None = None) -> None:
    """Work the configured queue until stopped (or, with --burst, until it is empty)."""
    parser = argparse.ArgumentParser(prog="python -m workers.worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    args = parser.parse_args(argv)
    config = Config.from_env()
    connection = Redis.from_url(config.redis_url)
    queue = mail_queue(connection, config.queue_name)
    _preload_jobs()
    worker = Worker([queue], connection=connection, serializer=queue.serializer, job_class=JsonJob)
    worker.work(burst=args.burst, with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    main()
