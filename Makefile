# The two commands of the README: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
BROKER_DIR ?= .eventconfig/broker
BROKER_PORT ?= 9092
export EVENTCONFIG_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(BROKER_PORT)

.PHONY: install run test test-unit test-integration broker-start broker-stop bench chaos clean

install:  ## Python package and test dependencies (editable)
	$(PYTHON) -m pip install -q -e '.[test]'

broker-start: install  ## the local Kafka broker (jars via Maven on first use), waits until ready
	eventconfig broker start --run-dir $(BROKER_DIR) --port $(BROKER_PORT)

broker-stop:
	eventconfig broker stop --run-dir $(BROKER_DIR)

run: broker-start  ## local broker + topics + the service
	eventconfig topics create
	eventconfig serve

test: install  ## every test; integration tests start their own broker on free ports
	$(PYTHON) -m pytest -q

test-unit: install
	$(PYTHON) -m pytest -q tests/unit

test-integration: install
	$(PYTHON) -m pytest -q tests/integration

bench: broker-start  ## the DESIGN §10 figures against the local broker
	$(PYTHON) -m bench

CHAOS_SEED ?= 7
CHAOS_ROUNDS ?= 10
chaos: install  ## faults on an own 3-node cluster (free ports), then the model check and its figures
	$(PYTHON) -m chaos --seed $(CHAOS_SEED) --rounds $(CHAOS_ROUNDS)

clean: broker-stop
	rm -rf .eventconfig
