# Triton for the reward model (the gpu overlay's `triton` Deployment): NVIDIA's image plus what the model's Python
# backend (deploy/triton/reward_model/1/model.py) imports. Build from the repository root:
#   docker build -f deploy/docker/triton.Dockerfile -t learnerfit-triton:gpu .
FROM nvcr.io/nvidia/tritonserver:25.08-py3
# The versions constraints.txt names (tests/deploy/test_images.py checks they agree).
RUN pip install --no-cache-dir torch==2.13.0 transformers==5.19.0 safetensors==0.8.0
USER 1000
