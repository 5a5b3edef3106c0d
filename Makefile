# The two commands of the README: `make run` and `make test`. Everything else supports them.
# Everything runs in a project virtual environment (.venv), never in the system interpreter
# (Debian and Ubuntu refuse `pip install` there, PEP 668). PYTHON is the interpreter that creates it.
PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
EVENTCONFIG := $(VENV)/bin/eventconfig
BROKER_DIR ?= .eventconfig/broker
BROKER_PORT ?= 9092
export EVENTCONFIG_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(BROKER_PORT)

.PHONY: install run lint test test-unit test-integration broker-start broker-stop etcd bench chaos chaos-long clean

install: $(VENV)/.installed  ## .venv with the package (editable), the gateway extra and the test dependencies

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install -q --disable-pip-version-check -e '.[test,gateway]'
	touch $@

broker-start: install  ## the local Kafka broker (jars via Maven on first use), waits until ready
	$(EVENTCONFIG) broker start --run-dir $(BROKER_DIR) --port $(BROKER_PORT)

broker-stop: install
	$(EVENTCONFIG) broker stop --run-dir $(BROKER_DIR)

run: broker-start  ## local broker + topics + the service
	$(EVENTCONFIG) topics create
	$(EVENTCONFIG) serve

lint: install  ## ruff (bugs, not style), mypy and import-linter (layers, pure core), as configured in pyproject.toml
	$(VENV_PYTHON) -m ruff check eventconfig tests bench chaos
	$(VENV_PYTHON) -m mypy
	$(VENV)/bin/lint-imports

test: install  ## every test; integration tests start their own broker on free ports
	$(VENV_PYTHON) -m pytest -q

test-unit: install
	$(VENV_PYTHON) -m pytest -q tests/unit

test-integration: install
	$(VENV_PYTHON) -m pytest -q tests/integration

etcd:  ## the benchmark's peer: Debian's etcd-server, installed only when no `etcd` is on PATH
	@command -v etcd >/dev/null || { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends etcd-server; }

bench: broker-start etcd  ## the benchmark against the local broker, etcd (Debian etcd-server) in the same run
	$(VENV_PYTHON) -m pip install -q --disable-pip-version-check -e '.[test,gateway,bench]'
	$(VENV_PYTHON) -m bench --peer etcd

CHAOS_SEED ?= 7
CHAOS_ROUNDS ?= 10
chaos: install  ## faults on an own 3-node cluster (free ports), then the model check and its figures
	$(VENV_PYTHON) -m chaos --seed $(CHAOS_SEED) --rounds $(CHAOS_ROUNDS)

chaos-long: install  ## at least 50 rounds and 10,000 acknowledged writes: unavailability p50 and max per fault kind
	$(VENV_PYTHON) -m chaos --seed $(CHAOS_SEED) --rounds 50 --min-acks 10000

clean: broker-stop  ## stops the broker and removes its data (the virtual environment stays)
	rm -rf .eventconfig
