# Two commands on a fresh Debian/Ubuntu machine:  make demo   and   make test
SHELL := /bin/bash
.DEFAULT_GOAL := demo

VENV := .venv
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.8
PY := $(VENV)/bin/python
# Debian packages: Tesseract with English, Simplified Chinese and orientation data; Dovecot for the
# IMAP integration tests; fonts to render test slips; pg_dump/pg_restore for `backup`/`restore` on PostgreSQL;
# Chromium for the web app's end-to-end tests (Playwright drives /usr/bin/chromium: never a downloaded browser).
APT_PACKAGES := python3 python3-venv tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-osd \
	dovecot-imapd fonts-dejavu-core fonts-wqy-microhei fonts-liberation postgresql-client chromium \
	fonts-dkg-handwriting fonts-breip fonts-femkeklaver fonts-arphic-ukai fonts-cwtex-kai
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
MODEL := classifiers/model/meta.json
# The demo's own data directory: its sample cases never land in a real database, and a real
# COMPLAINTDESK_DATABASE_URL or COMPLAINTDESK_CONFIG in the environment does not redirect it.
DEMO_HOME := $(CURDIR)/.demo
DEMO := env -u COMPLAINTDESK_DATABASE_URL -u COMPLAINTDESK_CONFIG $(VENV)/bin/complaintdesk --home $(DEMO_HOME)
TRAIN_DATA := $(wildcard classifiers/data/*.jsonl)

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: demo test system venv model lint clean
demo: venv model  ## install everything, then scan the bundled sample slips into the demo's own SQLite database (.demo/)
	$(DEMO) init
	$(DEMO) demo

test: venv model lint  ## install everything, check style and types, then run the whole test suite
	$(PY) -m pytest -n 2 --dist loadgroup

# The gate: ruff (rules and line length in pyproject.toml) over the whole tree, mypy over the four
# packages ([tool.mypy] packages). Both always run, so one run lists every finding; either one
# failing fails `make lint`, and so `make test` and CI.
lint: venv  ## ruff and mypy, with the versions locked in uv.lock
	@status=0; \
	$(VENV)/bin/ruff check . || status=1; \
	$(VENV)/bin/mypy || status=1; \
	exit $$status

system:  ## install the Debian packages that are missing
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(UV): | system
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --extra dev
	touch $@

venv: system $(VENV)/.synced

$(MODEL): $(TRAIN_DATA) classifiers/*.py classifiers/config.cfg classifiers/labels.toml | $(VENV)/.synced
	$(VENV)/bin/complaintdesk train --data classifiers/data --model-dir classifiers/model

model: $(MODEL)  ## train the bundled classifier from classifiers/data (deterministic)

clean:
	rm -rf $(VENV) $(TOOLS) .complaintdesk $(DEMO_HOME) classifiers/model
