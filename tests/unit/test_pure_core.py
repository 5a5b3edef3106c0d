"""The pure core (request handling, batching, apply, projection, codec, model) loads no I/O library:
it runs and is tested without a broker, an event loop or RocksDB (docs/design.md §11)."""

import subprocess
import sys

PURE_CORE = ("eventconfig.writer.handler", "eventconfig.writer.batch", "eventconfig.view.apply",
             "eventconfig.push.projector", "eventconfig.codec", "eventconfig.model")
IO_LIBRARIES = ("aiokafka", "rocksdict")


def test_importing_the_pure_core_loads_neither_aiokafka_nor_rocksdict():
    script = (f"import sys\nfor name in {PURE_CORE!r}: __import__(name)\n"
              f"print(','.join(m for m in {IO_LIBRARIES!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"importing the pure core failed:\n{done.stderr}"
    assert done.stdout.strip() == "", f"the pure core loaded {done.stdout.strip()}"


def test_the_view_package_still_offers_the_store_and_the_materializer_by_their_old_paths():
    script = ("import sys\nfrom eventconfig.view import Applier, Materializer, ViewStore, ViewWrites\n"
              "from eventconfig.view.store import ViewStore as Direct\nassert ViewStore is Direct\n"
              "print('rocksdict' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"the view package's names did not import:\n{done.stderr}"
    assert done.stdout.strip() == "True", "asking for the store loads it"


def test_no_command_module_imports_the_cli_entry_point():
    """Shared CLI helpers live in cli/common.py; only ``python -m eventconfig`` imports cli/main.py (no cycle)."""
    import ast
    from pathlib import Path

    import eventconfig.cli

    cycles = []
    for path in Path(eventconfig.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "eventconfig.cli.main":
                cycles.append(f"{path.name}:{node.lineno}")
    assert not cycles, f"command modules import the entry point: {cycles}"
