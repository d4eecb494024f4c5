"""A tiny random Llama with a tokenizer trained on the spot, for tests that need only plumbing."""

from __future__ import annotations

from pathlib import Path

# SmolLM2's chat format, so prompts look the same as with the real learner.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_CORPUS = [
    "Calculate 3 + 4 * 2. 4 * 2 = 8. 3 + 8 = 11. Final answer: 11",
    "What is 7 - 5? 7 - 5 = 2. Final answer: 2",
    "The sum of 12 and 30 is 42. Final answer: 42",
    "user assistant system the answer is \\boxed{5} #### 6 Final answer",
] * 20


def build_tiny_model(directory: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(_CORPUS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token="<|im_start|>")
    fast.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         bos_token_id=fast.bos_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    fast.save_pretrained(directory)
    return directory


SOLVER_ANSWER = "1 + 1 = 2\nFinal answer: 2"


def teach_one_answer(model_dir: Path, out_dir: Path, answer: str = SOLVER_ANSWER, steps: int = 150) -> Path:
    """The tiny model fine-tuned (plain torch, a few seconds) to reply `answer` to any learner prompt.

    A learner that is right on some problems ("Calculate 1 + 1.") and wrong on others, so the
    pipeline's tests see curation happen, not 0 curated of 0.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from learnerfit.domain.prompts import learner_conversation
    from learnerfit.v1 import records_pb2

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompts = [tokenizer.apply_chat_template(learner_conversation(records_pb2.Problem(question=f"Calculate {a} + {b}.")),
                                             tokenize=False, add_generation_prompt=True)
               for a in range(4) for b in range(3)]
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        prompt = prompts[step % len(prompts)]
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + answer_ids])
        labels = torch.tensor([[-100] * len(prompt_ids) + answer_ids])
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
