"""Helpers shared by the command modules: the invocation's settings, options of several commands, running
coroutines and turning every error into one line. It imports no command module (main imports them all).

Exit codes of every command (README: Using it):

* 0 -- done.
* 1 -- the command failed: an eventconfig error (not found, conflict, bad document, a version past the
  head, out of retention, a view in use ...), a file that cannot be read or written; ``verify`` also
  exits 1 when it finds differences, ``bootstrap --once`` when not everything converged.
* 2 -- wrong usage (click's code): a missing or invalid option, an input file that does not exist.
* 3 -- Kafka could not be reached or did not answer in time; retrying later may succeed.
* 130 -- interrupted (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, NoReturn, TypeVar

import click
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.markup import escape

from eventconfig.errors import EventConfigError, KafkaUnavailable
from eventconfig.kafka.connect import describe, unavailable
from eventconfig.settings import Settings
from eventconfig.writer.rules import reload_all

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3
SETTINGS_KEY = "eventconfig.settings"  # ctx.meta: the settings of this invocation, once loaded
T = TypeVar("T")
stderr = Console(stderr=True, highlight=False, soft_wrap=True)

# Options of more than one command.
timeout_option = click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
                              show_default=True, metavar="SECONDS",
                              help="Seconds to wait for the service's response.")
actor_option = click.option("--actor", envvar="EVENTCONFIG_ACTOR", show_envvar=True,
                            help="Who is writing, recorded in the history (default: the login name).")


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print a one-line error to stderr and exit non-zero."""
    stderr.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise SystemExit(code)


def load_settings(ctx: click.Context, **more: Any) -> Settings:
    """The settings of this invocation: root flags and command flags over environment over defaults."""
    settings = Settings.load({**ctx.find_root().obj, **more})
    ctx.meta[SETTINGS_KEY] = settings  # error messages name the bootstrap servers
    return settings


def default_actor(actor: str | None) -> str | None:
    """``--actor``, else the login name."""
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): the history then shows no actor
        return None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine (its errors are reported by :class:`CommandGroup`)."""
    return asyncio.run(coro)


@contextlib.contextmanager
def reloading_on_hangup() -> Iterator[None]:
    """While the block runs, SIGHUP re-reads the keyring and policy files (docs/design.md §14.4)."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, reload_all)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


async def until_signal(start: Callable[[], Awaitable[None]], wait: Callable[[], Awaitable[None]],
                       stop: Callable[[], Awaitable[None]], *, graceful: bool = False) -> None:
    """The one runner of long-lived commands: start, then run until SIGTERM/SIGINT or until ``wait``
    ends (re-raising its error). SIGHUP meanwhile re-reads the rules files.

    By default a signal cancels ``wait`` and ``stop`` then closes everything (always called). With
    ``graceful``, a signal calls ``stop`` to ask the work to end and ``wait`` finishes what it is
    doing (the bootstrapper completes a wake in progress)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await start()
    waiter = asyncio.ensure_future(wait())
    stopper = asyncio.create_task(stopping.wait())
    try:
        with reloading_on_hangup():
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        if graceful and not waiter.done():
            await stop()
            await asyncio.wait([waiter])
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stopper.cancel()
        if not waiter.done():
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
        if not graceful:
            await stop()
    if waiter.done() and not waiter.cancelled() and waiter.exception() is not None:
        raise waiter.exception()  # type: ignore[misc]


class CommandGroup(click.Group):
    """The ``eventconfig`` group: whatever goes wrong in a command ends as one line and an exit code,
    never a traceback. Commands close what they opened themselves (``async with``/``finally``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # stdout closed by the reader (``| head``): click exits quietly
        except (EventConfigError, KafkaError, TimeoutError, OSError) as exc:
            fail(*failure(exc, ctx.meta.get(SETTINGS_KEY)))


def failure(exc: BaseException, settings: Settings | None) -> tuple[str, int]:
    """The message and exit code that report ``exc``."""
    if isinstance(exc, (KafkaError, TimeoutError)):
        if settings is None:
            return f"Kafka did not answer: {describe(exc)}", EXIT_UNAVAILABLE
        return str(unavailable(settings, exc)), EXIT_UNAVAILABLE
    if isinstance(exc, EventConfigError):
        return str(exc), EXIT_UNAVAILABLE if _caused_by_kafka(exc) else EXIT_ERROR
    assert isinstance(exc, OSError)
    if exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}", EXIT_ERROR
    return str(exc) or type(exc).__name__, EXIT_ERROR


def _caused_by_kafka(exc: BaseException) -> bool:
    """KafkaUnavailable, or an error raised from a Kafka error (e.g. the client's "cannot reach Kafka")."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, (KafkaUnavailable, KafkaError)):
            return True
        cause = cause.__cause__
    return False
