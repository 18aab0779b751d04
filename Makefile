# m365ops.exchange_online: the whole workflow from a fresh clone.
# The logic lives in tools/run-tests; each target below is one of its steps.
#
#   make demo          see the collection work against the tenant simulator (no tenant of your own)
#   make test          everything CI runs; ends with "N passed, N failed"
#   make sanity [FILES="plugins/modules/exo_connect.py ..."]
#                      ansible-test sanity: ansible-core 2.19 / Python 3.11 and 2.20 / Python 3.12
#   make units         ansible-test units
#   make simulator-tests   the simulator's own tests (pytest)
#   make integration [TARGETS="exo_connect ..."]   integration targets against the simulator
#   make lint          ansible-lint (production profile) and antsibull-changelog lint
#   make docs          antsibull-docs lint (plugin docs), module/role doc completeness, EE definition (ansible-builder)
#   make build         ansible-galaxy collection build + galaxy-importer + ansible-doc -l
#   make bench         benchmarks/bench_*.py
#   make venv          create/update .venv (and .venv-2.20) only
#   make clean         remove build and test work areas (.cache), keep the virtual environments
#
# M365OPS_CACHE=DIR puts the work areas elsewhere (use one per concurrent run).

RUN := tools/run-tests
TARGETS ?=
FILES ?=

.PHONY: all demo test venv sanity sanity-2.19 sanity-2.20 units simulator-tests integration lint docs build bench clean

all: test

demo:
	@$(RUN) demo

test:
	@$(RUN) test

venv:
	@$(RUN) setup

sanity:
	@$(RUN) sanity all $(FILES)

sanity-2.19 sanity-2.20:
	@$(RUN) sanity $(@:sanity-%=%) $(FILES)

units:
	@$(RUN) units

simulator-tests:
	@$(RUN) simulator-tests

integration:
	@$(RUN) integration $(TARGETS)

lint:
	@$(RUN) lint

docs:
	@$(RUN) docs

build:
	@$(RUN) build

bench:
	@$(RUN) bench

clean:
	rm -rf .cache
