"""The pure core (request handling, batching, apply, projection, wire formats, the pure half of audit,
codec, model) loads no I/O library: it runs and is tested without a broker, an event loop or RocksDB
(docs/design.md §11).

The modules are the `pure-core` contract of import-linter in pyproject.toml, which `make lint` checks
statically; importing them here also catches what a static check cannot see, such as a parent
package's ``__init__`` that loads its adapters eagerly.
"""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import eventconfig.cli

ROOT = Path(__file__).resolve().parents[2]
IO_LIBRARIES = ("aiokafka", "rocksdict")


def contract(contract_id: str) -> dict:
    """One import-linter contract of pyproject.toml, by its id."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["id"] == contract_id)


PURE_CORE = tuple(contract("pure-core")["source_modules"])


def loaded_after(statement: str) -> str:
    """Which of the I/O libraries a fresh interpreter holds after ``statement``, comma-separated."""
    script = f"import sys\n{statement}\nprint(','.join(m for m in {IO_LIBRARIES!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, f"`{statement}` failed:\n{done.stderr}"
    return done.stdout.strip()


def test_the_contract_forbids_both_libraries_for_the_pure_core():
    assert set(contract("pure-core")["forbidden_modules"]) == set(IO_LIBRARIES)
    assert {"eventconfig.codec", "eventconfig.model", "eventconfig.client.wire",
            "eventconfig.trustgraph.dump"} <= set(PURE_CORE)


@pytest.mark.parametrize("module", PURE_CORE)
def test_importing_a_pure_module_loads_neither_aiokafka_nor_rocksdict(module):
    assert loaded_after(f"import {module}") == "", f"importing {module} loaded an I/O library"


def test_a_client_loads_only_what_it_needs():
    """``ConfigClient`` speaks Kafka but keeps no view: asking for it does not load rocksdict."""
    assert loaded_after("from eventconfig.client import ConfigClient") == "aiokafka"
    assert loaded_after("from eventconfig.audit import Mutation, HistoryQuery, plan_import") == ""


def test_the_packages_still_offer_their_adapters_by_their_old_paths():
    script = ("from eventconfig.view import Applier, Materializer, ViewStore, ViewWrites\n"
              "from eventconfig.view.store import ViewStore as Direct\nassert ViewStore is Direct\n"
              "from eventconfig.client import ConfigClient, ConfigSubscriber, LocalView, ClientError\n"
              "from eventconfig.audit import HistoryReader, rebuild_view, import_document, ImportResult\n"
              "from eventconfig.audit.history import HistoryReader as Reader\nassert HistoryReader is Reader")
    assert loaded_after(script) == "aiokafka,rocksdict", "asking for the adapters loads them"


def test_a_name_a_package_does_not_have_is_an_attribute_error():
    import eventconfig.view

    with pytest.raises(AttributeError, match="eventconfig.view.*Nothing"):
        eventconfig.view.Nothing  # noqa: B018


def test_no_command_module_imports_the_cli_entry_point():
    """Shared CLI helpers live in cli/common.py; only ``python -m eventconfig`` imports cli/main.py (no cycle)."""
    cycles = []
    for path in Path(eventconfig.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "eventconfig.cli.main":
                cycles.append(f"{path.name}:{node.lineno}")
    assert not cycles, f"command modules import the entry point: {cycles}"
