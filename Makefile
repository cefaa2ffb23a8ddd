# Two commands do everything on a fresh machine: `make demo` and `make test`.
# The first run builds .venv from requirements.lock (exact pins; ~3 min with uv, ~6 with pip); later runs reuse it.
PYTHON ?= python3
VENV := .venv
# faiss: the GPU wheel (requirements-gpu.txt, CUDA 12 like torch's) when nvidia-smi lists a GPU,
# faiss-cpu (requirements.lock) otherwise; `make FAISS=cpu` or `make FAISS=gpu` chooses by hand.
FAISS ?= auto
FAISS_KIND := $(if $(filter auto,$(FAISS)),$(shell nvidia-smi -L 2>/dev/null | grep -q '^GPU' && echo gpu || echo cpu),$(FAISS))
STAMP := $(VENV)/.installed-faiss-$(FAISS_KIND)
PIP = $(VENV)/bin/python -m pip --disable-pip-version-check
# uv (exact pin, bootstrapped into the venv by pip) installs the lock: parallel downloads and
# installs. Where uv cannot be installed (or fails), pip installs, as before. Bytecode is
# compiled as pip does, so imports (every CLI subprocess of the tests) stay as fast.
UV_VERSION := 0.13.8
UV = $(VENV)/bin/uv
INSTALL = { { $(UV) --version >/dev/null 2>&1 && $(UV) pip install --quiet --compile-bytecode --python $(VENV)/bin/python $(1); } || $(PIP) install --quiet $(1); }

.PHONY: demo test venv clean bench

venv: $(STAMP)

$(STAMP): requirements.lock requirements-gpu.txt pyproject.toml
	@case "$(FAISS_KIND)" in cpu|gpu) ;; *) echo "FAISS=$(FAISS): use auto, cpu or gpu" >&2; exit 2;; esac
	@echo "faiss: installing the $(FAISS_KIND) build (FAISS=$(FAISS); override with make FAISS=cpu or FAISS=gpu)"
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet uv==$(UV_VERSION) || echo "uv not installed: pip installs the lock (slower)"
	# both faiss wheels own the faiss/ package: the one leaving goes before the other is (re)installed
	$(if $(filter cpu,$(FAISS_KIND)),! $(PIP) show -q faiss-gpu-cu12 2>/dev/null || $(PIP) uninstall --quiet -y faiss-gpu-cu12 faiss-cpu)
	$(call INSTALL,-r requirements.lock)
	$(if $(filter gpu,$(FAISS_KIND)),$(PIP) uninstall --quiet -y faiss-cpu && $(call INSTALL,--no-deps --force-reinstall -r requirements-gpu.txt))
	$(call INSTALL,--no-deps -e .)
	rm -f $(VENV)/.installed $(VENV)/.installed-faiss-*
	$(VENV)/bin/python -c "import faiss; print('faiss', faiss.__version__, 'sees', faiss.get_num_gpus() if hasattr(faiss, 'get_num_gpus') else 0, 'GPUs')"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vidsonar demo

test: $(STAMP)
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || echo "chromium not installed: the browser test will be skipped"
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) || echo "postgresql not installed: the PostgreSQL catalog tests will be skipped"
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile  # two workers, a test file each: the suite used 0.9 of CI's 2 cores

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
