# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup demo test lint clean

help:
	@echo "make demo   set up .venv and run the federated demo on the embedded defaults"
	@echo "make test   set up .venv and run lint, types and every test (starts PostgreSQL)"

setup:
	@scripts/setup-venv.sh

demo: setup
	.venv/bin/mindcommons demo

test: setup
	@scripts/test.sh

lint: setup
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/mypy

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
