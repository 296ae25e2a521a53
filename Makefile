# The two commands a newcomer runs: `make demo` and `make test`. Both install what they need.
VENV := .venv
PY := $(VENV)/bin/python
IMAGE := forgebot-runner-python:1

.PHONY: demo test lint deps engine runner-image clean

deps:
	bash scripts/bootstrap.sh

engine:
	bash scripts/ensure-docker.sh

runner-image: engine
	bash runners/python/build-offline.sh

test: deps runner-image
	bash scripts/test.sh

demo: deps runner-image
	bash scripts/demo.sh

lint: deps
	$(VENV)/bin/ruff check bot tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf var/demo var/test
