# SMS Edge — `make run` starts the gateway on the embedded default, `make test` runs the suite.
# Both set up everything they need: Debian packages when missing, a .venv, the Python packages.
# `make install` builds the production venv the systemd unit runs (PREFIX=/opt/sms-edge).

VENV    ?= .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: run test test-fast lint check-config clean system-packages test-packages axe install

run: $(STAMP)
	$(PYTHON) run.py serve

test: $(STAMP) test-packages axe lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The inner loop: every test but those marked redis, browser, subprocess or slow (setup.cfg; tests/conftest.py
# marks by fixture and helper), on two pytest-xdist workers: 961 tests in about 55 s on the 2-core VM.
# `make test` still runs them all, in one process, and CI runs `make test`.
test-fast: $(STAMP)
	$(VENV)/bin/pytest -n 2 -m "not redis and not browser and not subprocess and not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

check-config: $(STAMP)
	$(PYTHON) run.py check-config --config config/gateway.yaml

system-packages:
	@scripts/ensure-packages.sh python3:python3 curl:curl
	@python3 -c 'import ensurepip, venv' 2>/dev/null || scripts/ensure-packages.sh no-such-command:python3-venv

# What the tests start for real: curl for the seed's cURL example, Redis servers (redis-cli builds
# the test clusters; the Sentinel is redis-server --sentinel), and Debian's
# headless Chromium with its driver for the page tests (never a browser download), with a CJK font
# so the pages' Chinese text renders in screenshots; wrk for the one speed guard (tests/test_speed_guard.py);
# Debian's Prometheus for promtool's rule tests and the dashboard check (deploy/prometheus, deploy/grafana);
# openssl makes the TLS tests' throwaway CA, systemd-analyze checks the systemd unit; php-cli and
# node run the reference callback receivers of docs/callbacks.md (tests/test_callback_receivers.py).
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

test-packages: system-packages
	@scripts/ensure-packages.sh curl:curl redis-server:redis-server redis-cli:redis-tools \
		chromium:chromium \
		chromedriver:chromium-driver $(CJK_FONT):fonts-noto-cjk wrk:wrk \
		promtool:prometheus prometheus:prometheus openssl:openssl systemd-analyze:systemd \
		node:nodejs npm:npm php:php-cli

# axe-core, the accessibility checker the page tests inject into Chromium (tests/browser.py), from
# the npm registry at a pinned version, into the venv's folder (git ignores it, `make clean` removes
# it); the tests download nothing and fail, naming this target, when it is missing.
AXE_VERSION := 4.11.1
AXE_DIR     := $(VENV)/node
AXE_STAMP   := $(AXE_DIR)/.axe-core-$(AXE_VERSION)

axe: $(AXE_STAMP)

$(AXE_STAMP): | test-packages
	rm -rf $(AXE_DIR)
	npm install --no-save --no-package-lock --no-audit --no-fund --prefix $(AXE_DIR) axe-core@$(AXE_VERSION)
	touch $@

$(STAMP): setup.cfg pyproject.toml | system-packages
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[test,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# The production install (docs/deploy-service-tls.md): a venv in $(PREFIX)/venv holding the gateway,
# built from this checkout, and its runtime dependencies only: none of the test or dev extras that
# .venv has. deploy/systemd/sms-edge.service runs its sms-edge. Run it again after updating the
# checkout: pip replaces the installed gateway with the checkout's.
PREFIX ?= /opt/sms-edge

install: system-packages
	test -x $(PREFIX)/venv/bin/python || python3 -m venv $(PREFIX)/venv
	rm -rf build    # setuptools would put a module deleted since the last build back in the wheel
	$(PREFIX)/venv/bin/python -m pip install -q .
	$(PREFIX)/venv/bin/sms-edge --help >/dev/null

clean:
	rm -rf $(VENV) data test-artifacts *.egg-info

# Benchmarks (bench/, results in bench/results.json, method in docs/benchmarks.md): wrk and a Redis
# server from Debian, py-spy in the venv for the profile. `make bench BENCH_CASES="records rss"` runs
# some cases; BENCH_DURATION=3 (and the other BENCH_* of bench/settings.py) shorten a run.
.PHONY: bench
BENCH_CASES ?=

bench: $(STAMP)
	@scripts/ensure-packages.sh wrk:wrk redis-server:redis-server
	@test -x $(VENV)/bin/py-spy || $(PYTHON) -m pip install -q py-spy
	$(PYTHON) -m bench $(BENCH_CASES)

# Soak (bench/soak.py): a gateway under mixed traffic and injected carrier and store faults for
# SOAK_SECONDS (default 600), then errors by class and the gateway's RSS growth. Loopback only.
.PHONY: soak
SOAK_SECONDS ?= 600

soak: $(STAMP)
	SOAK_SECONDS=$(SOAK_SECONDS) $(PYTHON) bench/soak.py
