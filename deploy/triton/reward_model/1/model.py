"""Triton python-backend model: a sequence-classification reward model, one score per sequence.

Tensors cross via DLPack rather than numpy: the bundled python-backend stub's numpy
path returns empty buffers under numpy 2 (measured here with nvidia-pytriton 0.7.0),
and DLPack needs no numpy at all.

An instance of kind GPU (config.gpu.pbtxt) puts the model on the device Triton gives
it and the inputs there too; the rewards go back as CPU tensors. `dtype` is the weight
dtype (float32 on the CPU; bfloat16 is the usual choice on a GPU).
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
        on_gpu = args.get("model_instance_kind") == "GPU"
        self.device = f"cuda:{args.get('model_instance_device_id', '0')}" if on_gpu else "cpu"
        self.model = AutoModelForSequenceClassification.from_pretrained(
            params["weights"], use_safetensors=True, dtype=getattr(torch, params.get("dtype") or "float32")
        ).to(self.device).eval()

    def execute(self, requests):
        responses = []
        with self.torch.inference_mode():
            for request in requests:
                ids, mask = (self.dlpack.from_dlpack(pb_utils.get_input_tensor_by_name(request, name).to_dlpack())
                             .to(self.device) for name in ("input_ids", "attention_mask"))
                reward = self.model(input_ids=ids, attention_mask=mask).logits[:, :1].float().cpu().contiguous()
                responses.append(pb_utils.InferenceResponse(
                    [pb_utils.Tensor.from_dlpack("reward", self.dlpack.to_dlpack(reward))]))
        return responses
