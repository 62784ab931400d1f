# make demo | make test | make bench — each works on a fresh machine (installs what it needs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS   := linuxptp iproute2 ethtool gcc e2fsprogs util-linux
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test bench debs install install-test install-bench clean

# A Debian python3 without its venv module gets python3-venv first (pyenv and others ship it).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv \
		&& $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

install-bench: $(BIN)/python
	$(BIN)/pip install -q -e '.[test,bench]'

# Debian packages the tests drive for real (ptp4l/pmc in network namespaces, ip, ethtool, a C compiler).
debs:
	@missing=""; \
	for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# the demo's clock is the PTP lab (ptp4l, pmc, ip) and the C core needs gcc: without them it trades nothing
demo: debs install
	$(BIN)/mmaudit demo

test: debs install-test
	$(BIN)/python -m pytest

bench: debs install-bench
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info journal/_journal_cffi.* journal/_fastappend.*.so mm_core/_fastmd_cffi.* reports/_orderjoin_cffi.* reports/_numtext_cffi.* .pytest_cache .hypothesis
