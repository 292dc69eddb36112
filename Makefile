# lastgang: the two commands a newcomer needs are `make demo` and `make test`.
# Both create (or update) a local virtual environment in .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-output

.PHONY: venv test test-deps lint typecheck unit demo bench fmt clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

# the suite on every core, each test file on one worker (a module's fixtures are made once)
unit: $(STAMP)
	$(BIN)/pytest -n auto --dist loadfile

# system packages the tests need: a real MQTT broker for tests/integration/test_mqtt.py and
# Debian's chromium for the browser tests in tests/e2e (never a downloaded browser build)
test-deps:
	@if [ "$$(id -u)" = "0" ]; then \
		command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto); \
		test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium); \
	fi

test: test-deps lint typecheck unit

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

demo: $(STAMP)
	$(BIN)/lastgang demo --out $(DEMO_OUT)

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
