"""The broker of the worker processes, built once with the platform's middleware stack.

Imported first by every ``actors/*`` module (and, through :mod:`app.worker_boot`, named first on Dramatiq's
command line: ``python -m app.worker_main app.worker_boot actors.email --queues email``), so no actor is ever
bound to Dramatiq's implicit localhost broker. Logging and Sentry are set up here because Sentry must hook in
before the broker exists.

Middleware order (docs/architecture.md "Message life cycle"): current message → correlation id → job log →
metrics → job history → idempotency → retry policy → dead-letter archive. Dramatiq runs ``after_*`` hooks in
reverse, so by the time metrics, history and logs see an attempt's end, the retry policy has decided whether it
will be retried.
"""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import CurrentMessage, Middleware, ShutdownNotifications, TimeLimit

from app import constants, observability
from app.middleware.correlation import CorrelationId
from app.middleware.dead_letter import DeadLetterArchive, archive_undecodable
from app.middleware.history import JobHistory
from app.middleware.idempotency import Idempotency
from app.middleware.job_log import JobLog
from app.middleware.metrics import Metrics
from app.middleware.retry_policy import RetryPolicy, RetrySettings
from app.middleware.sentry import SentryReporting
from app.middleware.worker_lifecycle import WorkerLifecycle
from app.settings import Settings, get_settings

#: Per-queue retry policies; queues not named use the default (5 retries from 5 s ×5, 24 h max age).
QUEUE_RETRY_POLICIES: dict[str, RetrySettings] = {
    # A stuck email is worth less after a day; SAM.gov outages can last hours, so sync backs off longer.
    constants.SYNC_QUEUE: RetrySettings(max_retries=6, min_backoff_ms=30_000, backoff_factor=4),
}


def build_middleware(*, sentry: bool) -> list[Middleware]:
    stack: list[Middleware] = [
        # First, so that every later hook and the actor see CurrentMessage.get_current_message().
        CurrentMessage(),
        CorrelationId(),
        JobLog(),
        Metrics(),
        JobHistory(),
        Idempotency(),
        RetryPolicy(per_queue=QUEUE_RETRY_POLICIES),
        DeadLetterArchive(),
    ]
    if sentry:
        stack.append(SentryReporting())
    stack += [WorkerLifecycle(), TimeLimit(), ShutdownNotifications()]
    return stack


def build_broker(settings: Settings, *, sentry: bool = False) -> dramatiq.Broker:
    """A Redis broker (or RabbitMQ for an ``amqp://`` ``BROKER_URL``) with the platform's middleware."""
    url = settings.effective_broker_url
    middleware = build_middleware(sentry=sentry)
    if url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=middleware)
    from app.transport.redis_broker import build_redis_broker

    return build_redis_broker(url, middleware=middleware, poison_handler=archive_undecodable)


def _setup() -> dramatiq.Broker:
    settings = get_settings()
    sentry_on = observability.setup_sentry(settings)
    observability.setup_logging(settings)
    built = build_broker(settings, sentry=sentry_on)
    dramatiq.set_broker(built)
    for queue in constants.QUEUES:
        built.declare_queue(queue)
    return built


broker = _setup()
