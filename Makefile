# The two commands a newcomer runs: `make demo` and `make test`. Both install what they need.
VENV := .venv
PY := $(VENV)/bin/python
IMAGE := forgebot-runner-python:1

.PHONY: demo test lint deps engine runner-image runner-images clean

deps:
	bash scripts/bootstrap.sh

engine:
	bash scripts/ensure-docker.sh

runner-image: engine
	bash runners/python/build-offline.sh

# node and go build side by side: each spends most of its time waiting on the package mirror.
runner-images: runner-image
	bash runners/node/build-offline.sh & node=$$!; bash runners/go/build-offline.sh; go=$$?; \
	wait $$node && exit $$go

test: deps runner-images
	bash scripts/test.sh

demo: deps runner-image
	bash scripts/demo.sh

lint: deps
	$(VENV)/bin/ruff check bot tests bench runners/tools
	$(VENV)/bin/mypy

clean:
	rm -rf var/demo var/test
