"""OpenAI-compatible chat completions over HTTP: a hosted Oracle, or `vllm serve`.

Standard library only (urllib + a thread pool). Requests run concurrently up to a
bound; 429, 5xx and connection failures are retried with exponential backoff (the
server's `retry-after-ms` or `Retry-After`, in seconds or as an HTTP date, wins when
sent, up to a cap); any other 4xx fails at once with the server's own message, since
retrying a bad request cannot help. The output cap goes as `max_completion_tokens`
(newer hosted models refuse `max_tokens`; `vllm serve` takes both).

A reply prefix (a repair, continued by the model) needs an endpoint that continues a
final assistant message: `vllm serve` does, given `continue_final_message: true` and
`add_generation_prompt: false`; hosted chat APIs do not, so it is a setting.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from learnerfit.domain.inference import Completion, Conversation, SamplingParams, TokenUsage
from learnerfit.domain.oracle.spend import estimate_tokens
from learnerfit.errors import Unavailable
from learnerfit.models.timing import model_time

log = logging.getLogger(__name__)

RETRYABLE = {408, 409, 429, 500, 502, 503, 504}


class OracleRequestError(RuntimeError):
    """The endpoint refused a request for good (4xx), or kept failing after every retry."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class OracleUnavailable(OracleRequestError, Unavailable):
    """The endpoint kept answering 429/5xx or refusing connections through every retry: down for now. A stage
    retries the record later (its own retry budget) before giving up on it."""


class OpenAIChatGenerator:
    def __init__(self, endpoint: str, model: str, *, api_key: str | None = None, timeout_s: float = 120.0,
                 max_concurrency: int = 8, max_retries: int = 5, backoff_s: float = 0.5, max_backoff_s: float = 30.0,
                 max_retry_after_s: float = 120.0, continues_prefix: bool = False,
                 admit: Callable[[int, int], None] | None = None):
        self.url = endpoint.rstrip("/") + "/chat/completions"
        self.admit = admit  # a rate limit shared by the service's replicas: waits for room before each request
        self.model_name = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.continues_prefix = continues_prefix
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="openai")

    def request_body(self, conversation: Conversation, params: SamplingParams, prefix: str = "") -> dict:
        messages = [{"role": m["role"], "content": m["content"]} for m in conversation]
        body = {
            "model": self.model_name,
            "messages": messages,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_completion_tokens": params.max_new_tokens,
            "seed": params.seed,
        }
        if prefix:
            # vLLM's extension: the reply starts with the prefix and the model continues it, in the same turn.
            messages.append({"role": "assistant", "content": prefix})
            body |= {"continue_final_message": True, "add_generation_prompt": False}
        return body

    def generate(self, conversations: Sequence[Conversation], params: SamplingParams,
                 prefixes: Sequence[str] | None = None) -> list[list[Completion]]:
        prefixes = list(prefixes) if prefixes is not None else [""] * len(conversations)
        if any(prefixes) and not self.continues_prefix:
            raise NotImplementedError(f"{self.url} is not set up to continue a reply prefix (continues_prefix: "
                                      "true is for `vllm serve`; hosted chat APIs cannot)")
        with model_time("generate"):  # the endpoint's time, as this client waits for it
            futures = [self._pool.submit(self._complete, self.request_body(c, params, prefix), prefix)
                       for c, prefix in zip(conversations, prefixes, strict=True)]
            return [f.result() for f in futures]

    def _complete(self, body: dict, prefix: str = "") -> list[Completion]:
        response = self._post(body)
        choices = sorted(response.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != body["n"]:
            raise OracleRequestError(f"{self.url}: asked for n={body['n']} choices, got {len(choices)}")
        usages = split_usage(response.get("usage"), len(choices))
        return [
            # With a prefix the server returns only what follows it: the text is the whole reply.
            Completion(text=prefix + ((c.get("message") or {}).get("content") or ""),
                       token_count=usage.completion_tokens if usage else 0,
                       truncated=c.get("finish_reason") == "length", usage=usage)
            for c, usage in zip(choices, usages, strict=True)
        ]

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        # As a provider counts a request against its tokens-per-minute: the prompt, plus the most the reply may take.
        tokens = estimate_tokens(body["messages"], "", 0).prompt_tokens + body["max_completion_tokens"] * body["n"]
        for attempt in range(self.max_retries + 1):
            retry_after = None
            if self.admit is not None:
                self.admit(1, tokens)
            try:
                request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                    return json.loads(reply.read())
            except urllib.error.HTTPError as exc:
                detail = _error_message(exc)
                if exc.code not in RETRYABLE:
                    raise OracleRequestError(f"{self.url} answered {exc.code}: {detail}", exc.code) from None
                failure, status, retry_after = f"{exc.code}: {detail}", exc.code, retry_after_s(exc.headers)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                failure, status = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}", None
            if attempt == self.max_retries:
                raise OracleUnavailable(f"{self.url} failed after {attempt + 1} attempts; last: {failure}", status)
            backoff = min(self.max_backoff_s, self.backoff_s * 2**attempt)
            delay = backoff if retry_after is None else min(retry_after, self.max_retry_after_s)
            log.warning("oracle request failed (%s); retry %d/%d in %.1fs", failure, attempt + 1, self.max_retries,
                        delay)
            time.sleep(delay * (1 + 0.1 * random.random()))  # jitter: concurrent retries do not land together
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def split_usage(usage: Mapping | None, choices: int) -> list[TokenUsage | None]:
    """A reply's `usage` shared out over its choices so that the shares add up to what the request took (the
    prompt is sent once for all n); None for each where the server reported none (counted by the caller then)."""
    if not isinstance(usage, Mapping) or "prompt_tokens" not in usage and "completion_tokens" not in usage:
        return [None] * choices
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    columns = [_shares(int(usage.get(key) or 0), choices) for key in ("prompt_tokens", "completion_tokens")]
    return [TokenUsage(prompt, completion, cache, requests=int(i == 0))
            for i, (prompt, completion, cache) in enumerate(zip(*columns, _shares(int(cached), choices)))]


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)] if parts else []


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
        return str((body.get("error") or {}).get("message") or body)
    except (ValueError, AttributeError):
        return exc.reason or "no detail"


def retry_after_s(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms` (OpenAI's), else `Retry-After` as seconds or an HTTP
    date; None when it says nothing we can read."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    try:
        if millis is not None:
            return max(0.0, float(millis) / 1000)
    except ValueError:
        pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))

