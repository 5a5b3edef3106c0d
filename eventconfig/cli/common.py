"""Helpers shared by the command modules: running coroutines and reporting errors."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

from rich.console import Console
from rich.markup import escape

from eventconfig.errors import EventConfigError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
T = TypeVar("T")
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error to stderr and exit non-zero."""
    stderr.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise SystemExit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; eventconfig errors become a clear message and exit code 1."""
    try:
        return asyncio.run(coro)
    except EventConfigError as exc:
        fail(str(exc))
