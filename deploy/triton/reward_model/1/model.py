"""Triton python-backend model: a sequence-classification reward model, one score per sequence.

Tensors cross via DLPack rather than numpy: the bundled python-backend stub's numpy
path returns empty buffers under numpy 2 (measured here with nvidia-pytriton 0.7.0),
and DLPack needs no numpy at all.
"""

import json
import sys

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = {k: v["string_value"] for k, v in json.loads(args["model_config"])["parameters"].items()}
        sys.path[:0] = [p for p in params.get("python_path", "").split(":") if p]
        import torch
        from torch.utils import dlpack
        from transformers import AutoModelForSequenceClassification

        self.torch, self.dlpack = torch, dlpack
        torch.set_num_threads(int(params.get("torch_threads") or 1))
        self.model = AutoModelForSequenceClassification.from_pretrained(
            params["weights"], use_safetensors=True
        ).eval()

    def execute(self, requests):
        responses = []
        with self.torch.inference_mode():
            for request in requests:
                ids, mask = (self.dlpack.from_dlpack(pb_utils.get_input_tensor_by_name(request, name).to_dlpack())
                             for name in ("input_ids", "attention_mask"))
                reward = self.model(input_ids=ids, attention_mask=mask).logits[:, :1].float().contiguous()
                responses.append(pb_utils.InferenceResponse(
                    [pb_utils.Tensor.from_dlpack("reward", self.dlpack.to_dlpack(reward))]))
        return responses
