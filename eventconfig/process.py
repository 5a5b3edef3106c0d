"""The config service process: topic check, materializer, writer, the read server (with a read topic), (by default) the push projector and
(with a TrustGraph topicspace) the TrustGraph front end.

Example::

    service = ConfigService(settings)
    await service.start()
    await service.stop()
"""

from __future__ import annotations

import asyncio
import logging
import time

from eventconfig.kafka.adapter import KafkaError

from eventconfig import metrics
from eventconfig.errors import ServiceStartError
from eventconfig.kafka.connect import unavailable
from eventconfig.kafka.topics import admin_client, check_topics, topic_exists
from eventconfig.push.role import PushProjector
from eventconfig.push.writes import WriterPokes
from eventconfig.settings import Settings
from eventconfig.trustgraph import topics as trustgraph_topics
from eventconfig.trustgraph.frontend import TrustGraphFrontEnd
from eventconfig.trustgraph.wire import TrustGraphTopics
from eventconfig.view.materializer import Materializer
from eventconfig.writer.read_server import ReadServer
from eventconfig.writer.role import Writer
from eventconfig.tasks import cancel

log = logging.getLogger(__name__)


class ConfigService:
    """Everything ``eventconfig serve`` runs, startable and stoppable in-process (tests embed it)."""

    def __init__(self, settings: Settings, *, projector: bool = True) -> None:
        self.settings = settings
        self.materializer = Materializer(settings)
        pokes = WriterPokes(items_cap=settings.poke_items_max_bytes) if settings.writer_pokes else None
        self.writer = Writer(settings, self.materializer, pokes)
        self.projector = PushProjector(settings) if projector else None
        self.trustgraph: TrustGraphFrontEnd | None = None
        self.read_server: ReadServer | None = None  # when the deployment has a read topic
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Check the topics (fatal if unsafe), catch the view up, then join the writer group.

        If any step fails, whatever already started is stopped again before the error is raised:
        KafkaUnavailable when Kafka does not answer, ServiceStartError for a metrics port in use or a
        view that does not catch up.
        """
        started = time.monotonic()
        async with admin_client(self.settings) as admin:
            await check_topics(admin, self.settings)
            if await topic_exists(admin, self.settings.topics.read):
                self.read_server = ReadServer(self.settings, self.materializer, self.writer.config)
            if self.settings.trustgraph_topicspace:
                topics = TrustGraphTopics.of(self.settings.trustgraph_topicspace)
                limit = await trustgraph_topics.ensure_topics(admin, self.settings, topics)
                self.trustgraph = TrustGraphFrontEnd(self.settings, limit)
        await self.materializer.start()
        try:
            version = await self.materializer.wait_caught_up(timeout=3600)
            log.info("view ready", extra={"fields": {"version": version,
                                                     "took_s": round(time.monotonic() - started, 3)}})
            if self.settings.metrics_port:
                self._serve_metrics(self.settings.metrics_port)
            self._tasks = [asyncio.create_task(self.writer.run(), name="writer"),
                           asyncio.create_task(self.materializer.wait(), name="view"),
                           asyncio.create_task(self._report_view(), name="view-metrics")]
            if self.read_server is not None:
                self._tasks.append(asyncio.create_task(self.read_server.run(), name="read-server"))
            if self.projector is not None:
                self._tasks.append(asyncio.create_task(self.projector.run(), name="projector"))
            if self.trustgraph is not None:
                self._tasks += [asyncio.create_task(role.run(), name=role.role) for role in self.trustgraph.roles]
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, KafkaError):
                raise unavailable(self.settings, exc) from exc
            if isinstance(exc, TimeoutError):
                raise ServiceStartError(str(exc)) from exc
            raise

    @staticmethod
    def _serve_metrics(port: int) -> None:
        try:
            metrics.serve_metrics(port)
        except OSError as exc:
            raise ServiceStartError(f"cannot serve metrics on port {port}: {exc.strerror or exc}") from exc

    async def wait(self) -> None:
        """Return when a component dies (re-raising its error); runs until cancelled otherwise."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()

    async def stop(self) -> None:
        await cancel(*self._tasks)
        self._tasks = []
        await self.materializer.stop()
        log.info("service stopped")

    async def _report_view(self) -> None:
        while True:
            metrics.VIEW_VERSION.set(self.materializer.version)
            await asyncio.sleep(1)
