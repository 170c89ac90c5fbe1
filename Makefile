# The book's two commands (see README.md):
#   make book   build the HTML book in _build/html, executing every chapter at the `book` tier
#   make test   run the test suite (unit tests, every chapter at the `smoke` tier, the book build)
# Each creates .venv on first use. CONSTRAINTS pins the CPU build of torch; a reader
# with a GPU who wants the CUDA build runs `make book CONSTRAINTS=`.

PYTHON      ?= python3
VENV        ?= .venv
CONSTRAINTS ?= .ci/constraints-cpu.txt
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
PIP_CONSTRAINT_FLAG := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

.PHONY: book test venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.txt $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(PIP_CONSTRAINT_FLAG) -r requirements.txt -e ".[dev]"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --config _config.yml --toc book/_toc.yml --warningiserror --keep-going
	@echo "The book is in _build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf _build
