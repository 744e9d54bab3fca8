"""The ``openai`` backend: any OpenAI-compatible server, vLLM first.

Images go as PNG data URLs at the model's input resolution, the registry's tools as
strict function schemas, the verdict through ``response_format`` JSON schema (with a
tolerant parser for servers without it), and the probability from the label token's
logprobs when the server returns them.
"""

from __future__ import annotations

import json
from typing import Any

import openai
from langchain_core.messages import AIMessage

from sleuth.agent.backends import BackendOptions
from sleuth.agent.backends.base import BackendError, ModelVerdict, Situation
from sleuth.agent.backends.parsing import label_probability, parse_tool_calls, parse_verdict
from sleuth.agent.backends.vlm import VisionBackend, served_family
from sleuth.agent.verdict import BackendIdentity

TOP_LOGPROBS = 5


class OpenAIBackend(VisionBackend):
    """A vision-language model behind an OpenAI-compatible API.

    Parameters
    ----------
    model : str
        The served model name.
    options : BackendOptions
        ``base_url`` (required), ``api_key``, ``timeout``, ``retries``, ``family``,
        ``max_new_tokens``.
    """

    def __init__(self, model: str, options: BackendOptions) -> None:
        if not options.base_url:
            raise BackendError(
                "the openai backend needs a server: pass --base-url http://HOST:PORT/v1 "
                "(or set SLEUTH_BASE_URL)"
            )
        super().__init__(served_family(model, options), max_images=options.max_images)
        self.model = model
        self.options = options
        self.identity = BackendIdentity(provider="openai", model=model, base_url=options.base_url)
        self.client = openai.OpenAI(
            base_url=options.base_url,
            api_key=options.api_key,
            timeout=options.timeout,
            max_retries=options.retries,
        )

    def close(self) -> None:
        """Close the HTTP client and its pooled connections to the model server."""
        self.client.close()

    def reason(self, situation: Situation) -> AIMessage:
        """Ask the model for its next move: tool calls, a verdict, or an answer."""
        messages, tools = self.chat(situation)
        response = self._call(
            messages=messages,
            tools=tools,
            tool_choice="auto",
            parallel_tool_calls=True,
        )
        return self._message(response)

    def _structured(self, situation: Situation) -> tuple[ModelVerdict | None, float | None]:
        messages, _ = self.chat(situation)
        schema = ModelVerdict.model_json_schema()
        response = self._call(
            messages=messages,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": schema, "strict": True},
            },
        )
        choice = response.choices[0]
        return parse_verdict(choice.message.content or ""), _p_label(choice)

    def _call(self, **request: Any) -> Any:
        try:
            return self.client.chat.completions.create(
                model=self.model,
                max_tokens=self.options.max_new_tokens,
                temperature=0.0,
                logprobs=True,
                top_logprobs=TOP_LOGPROBS,
                **request,
            )
        except openai.APITimeoutError:
            raise BackendError(
                f"the model server at {self.options.base_url} did not answer within "
                f"{self.options.timeout:g} s ({self.options.retries} retry)"
            ) from None
        except openai.APIConnectionError as err:
            raise BackendError(
                f"cannot reach the model server at {self.options.base_url}: {err.__cause__ or err}"
            ) from None
        except openai.APIStatusError as err:
            raise BackendError(
                f"the model server at {self.options.base_url} refused the request "
                f"(HTTP {err.status_code}): {_short(err)}"
            ) from None

    def _message(self, response: Any) -> AIMessage:
        choice = response.choices[0]
        content = choice.message.content or ""
        calls, invalid = [], []
        for call in choice.message.tool_calls or []:
            try:
                args = json.loads(call.function.arguments or "{}")
                if not isinstance(args, dict):
                    raise ValueError("arguments are not a JSON object")
                calls.append(
                    {"name": call.function.name, "args": args, "id": call.id, "type": "tool_call"}
                )
            except ValueError as err:
                invalid.append(
                    {
                        "name": call.function.name,
                        "args": (call.function.arguments or "")[:500],
                        "id": call.id,
                        "error": str(err),
                        "type": "invalid_tool_call",
                    }
                )
        if not calls and not invalid and "<tool_call>" in content:
            content, calls, invalid = parse_tool_calls(content)  # a server without a parser
        return AIMessage(
            content=content,
            tool_calls=calls,
            invalid_tool_calls=invalid,
            response_metadata={"p_label": _p_label(choice), "finish_reason": choice.finish_reason},
        )


def _p_label(choice: Any) -> float | None:
    logprobs = getattr(choice, "logprobs", None)
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if not content:
        return None
    tokens = [item.token for item in content]
    alternatives = [{alt.token: alt.logprob for alt in item.top_logprobs or []} for item in content]
    for item, alts in zip(content, alternatives, strict=True):
        alts.setdefault(item.token, item.logprob)
    return label_probability(tokens, alternatives)


def _short(err: openai.APIStatusError) -> str:
    try:
        body = err.response.json()
        message = body.get("message") or body.get("error", {}).get("message") or str(body)
    except ValueError:
        message = err.response.text
    return str(message)[:300]
