"""Reward model served by Triton Inference Server, over Triton's gRPC protocol (tritonclient).

The tokenizer runs here, so the server sees token ids only and the ids are exactly
those the in-process back end feeds its model (same layout, same length-sorted
batches); the scores of the two paths agree to float rounding. A request never holds
more sequences than the served model's `max_batch_size` (read from the server's model
config at start), which the server would refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from learnerfit.models.batching import length_sorted_batches, pad_batch
from learnerfit.models.reward import encode_rewards
from learnerfit.models.timing import model_time
from learnerfit.models.weights import resolve_model


class TritonRewardModel:
    def __init__(self, url: str, triton_model: str, *, model_name: str, tokenizer: str, max_batch_sequences: int = 32,
                 max_length: int = 512, timeout_s: float = 60.0, cache_dir: Path | None = None):
        import tritonclient.grpc as triton_grpc

        self._grpc = triton_grpc
        self.model_name = model_name  # what the scores record as their reward model
        self.triton_model = triton_model
        self.max_batch_sequences = max_batch_sequences
        self.max_length = max_length
        self.timeout_s = timeout_s
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_model(tokenizer, cache_dir))
        self.client = triton_grpc.InferenceServerClient(url)
        if not self.client.is_model_ready(triton_model):
            raise RuntimeError(f"Triton at {url} has no ready model {triton_model!r}")
        served = int(self.client.get_model_config(triton_model, as_json=True)["config"].get("max_batch_size", 0))
        if served < 1:
            raise RuntimeError(f"Triton model {triton_model!r} has max_batch_size {served}: the reward model takes "
                               "batches (deploy/triton/reward_model/config.pbtxt)")
        self.batch_limit = min(max_batch_sequences, served)

    def rewards(self, questions: Sequence[str], solutions: Sequence[str]) -> list[float]:
        encoded = encode_rewards(self.tokenizer, questions, solutions, self.max_length)
        scores = [0.0] * len(encoded)
        for batch in length_sorted_batches([len(e) for e in encoded], self.batch_limit):
            ids, mask = pad_batch([encoded[i] for i in batch], self.tokenizer.pad_token_id)
            inputs = []
            for name, tensor in (("input_ids", ids), ("attention_mask", mask)):
                item = self._grpc.InferInput(name, list(tensor.shape), "INT64")
                item.set_data_from_numpy(tensor.numpy().astype(np.int64))
                inputs.append(item)
            with model_time("reward"):  # the Triton server's time, as this client waits for it
                result = self.client.infer(self.triton_model, inputs, client_timeout=self.timeout_s,
                                           outputs=[self._grpc.InferRequestedOutput("reward")])
            for i, value in zip(batch, result.as_numpy("reward")[:, 0].tolist(), strict=True):
                scores[i] = value
        return scores

    def close(self) -> None:
        self.client.close()
