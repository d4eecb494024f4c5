"""The chat template, applied one way by every back end: sampling and scoring see the same prompt tokens."""

from __future__ import annotations

from learnerfit.domain.inference import Conversation


def render_prompt(tokenizer, conversation: Conversation) -> str:
    """The exact prompt text the model sees, with the assistant's reply opened."""
    return tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)


def encode_reply(tokenizer, conversation: Conversation, solution: str) -> tuple[list[int], list[int]]:
    """(prompt ids, solution ids): the rendered prompt, then the solution as the model's reply."""
    prompt_ids = tokenizer(render_prompt(tokenizer, conversation), add_special_tokens=False)["input_ids"]
    solution_ids = tokenizer(solution, add_special_tokens=False)["input_ids"]
    return prompt_ids, solution_ids
