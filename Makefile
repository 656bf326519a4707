# The two commands the README promises: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the sandbox page's browser test (Playwright cannot download its own here), and a
# CJK font so its screenshots show the style names rather than empty boxes.
browser:
	@{ command -v chromium >/dev/null 2>&1 && fc-list :lang=zh | grep -q . ; } \
		|| { apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; } \
		|| echo "chromium could not be installed: the browser test will be skipped"

# The real bot when a token is configured, else the offline sandbox chat page.
run: install
	@if [ -n "$$TELEGRAM_TOKEN" ] || grep -qs '^TELEGRAM_TOKEN=.' .env; then \
		$(BIN)/calligraphy bot; else $(BIN)/calligraphy sandbox; fi

test: install browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
