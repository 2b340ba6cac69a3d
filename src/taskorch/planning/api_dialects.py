"""What the Anthropic Messages API and the OpenAI chat-completions API are sent and answer.

Each dialect builds a request body from a conversation, reads the structured answer out of a
response (the plan, a refusal, or a note of what is wrong with the answer), and extends the
conversation with a repair request that feeds the problems back to the model.

- anthropic: `POST {base}/v1/messages`; the plan arrives as the input of a forced tool call
  (`tool_choice: {"type": "tool", "name": "submit_plan"}`); `stop_reason: "refusal"` is a refusal.
- openai: `POST {base}/chat/completions`; the plan arrives as the message content under
  `response_format: {"type": "json_schema"}`, or as the arguments of a forced function call;
  `message.refusal` is a refusal. Local servers (Ollama, vLLM, LM Studio, llama.cpp) speak it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from taskorch.config import ApiPlannerSettings
from taskorch.planning.schema import PLAN_STEPS_SCHEMA

__all__ = ["ANTHROPIC_VERSION", "TOOL_NAME", "Answer", "Dialect", "dialect_for"]

log = logging.getLogger(__name__)

TOOL_NAME: Final = "submit_plan"
ANTHROPIC_VERSION: Final = "2023-06-01"
_TOOL_DESCRIPTION: Final = "Submit the plan: its steps, each calling one catalog tool."
_FENCE: Final = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


@dataclass
class Answer:
    """One response, read: the plan data, or why there is none."""

    output: Any = None
    """The parsed structured answer (None when there is none)."""
    problem: str | None = None
    """What is wrong with the answer that the model could fix (not JSON, no tool call)."""
    refusal: str | None = None
    truncated: bool = False
    said: str = ""
    reply: dict[str, Any] = field(default_factory=dict)
    """The assistant message to put back into the conversation for a repair round."""
    call_id: str | None = None


class Dialect(Protocol):
    path: str

    def headers(self, key: str | None) -> dict[str, str]: ...

    def body(
        self, system: str | None, messages: list[dict[str, Any]], schema: dict[str, Any] = PLAN_STEPS_SCHEMA
    ) -> dict[str, Any]: ...

    def first(self, prompt: str) -> list[dict[str, Any]]: ...

    def read(self, data: Any) -> Answer:
        """The answer in a response; raises `ValueError` when it is not this API's response."""
        ...

    def repair(self, messages: list[dict[str, Any]], answer: Answer, problems: str) -> None: ...

    def refused(self, param: str) -> bool:
        """Adapt to the API refusing request field `param`; True if the request is worth sending again."""
        ...


def _repair_text(problems: str) -> str:
    return (
        "The plan cannot be accepted. Problems:\n"
        f"{problems}\n"
        "Answer again with the whole corrected plan, using only tools from the catalog."
    )


def _json(text: str) -> tuple[Any, str | None]:
    """`text` as JSON (a fenced ```json block too), or None and what is wrong with it."""
    fenced = _FENCE.match(text)
    try:
        return json.loads(fenced.group(1) if fenced else text), None
    except ValueError as exc:
        return None, f"the answer is not valid JSON ({exc})"


class Anthropic:
    """The Messages API with the plan as a forced tool call."""

    path = "/v1/messages"

    def __init__(self, settings: ApiPlannerSettings) -> None:
        self.settings = settings

    def headers(self, key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    def first(self, prompt: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": prompt}]

    def body(
        self, system: str | None, messages: list[dict[str, Any]], schema: dict[str, Any] = PLAN_STEPS_SCHEMA
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.settings.model,
            "max_tokens": self.settings.max_tokens,
            "messages": messages,
            "tools": [{"name": TOOL_NAME, "description": _TOOL_DESCRIPTION, "input_schema": schema}],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        }
        if system:
            body["system"] = system
        return body

    def read(self, data: Any) -> Answer:
        content = data.get("content") if isinstance(data, dict) else None
        if not isinstance(content, list):
            raise ValueError("it has no content list: not a Messages API response")
        stop = data.get("stop_reason")
        said = " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
        answer = Answer(said=said, reply={"role": "assistant", "content": content})
        if stop == "refusal":
            answer.refusal = said or "no reason given"
            return answer
        call = next(
            (
                b
                for b in content
                if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("name") == TOOL_NAME
            ),
            None,
        )
        if call is None:
            answer.truncated = stop == "max_tokens"
            answer.problem = f"the answer did not call {TOOL_NAME}"
            return answer
        answer.output = call.get("input")
        answer.call_id = str(call.get("id", ""))
        return answer

    def repair(self, messages: list[dict[str, Any]], answer: Answer, problems: str) -> None:
        messages.append(answer.reply)
        if answer.call_id:
            block = {"type": "tool_result", "tool_use_id": answer.call_id, "is_error": True}
            messages.append({"role": "user", "content": [{**block, "content": _repair_text(problems)}]})
        else:
            messages.append({"role": "user", "content": _repair_text(problems)})

    def refused(self, param: str) -> bool:
        return False


class OpenAi:
    """Chat completions with the plan as JSON-schema content, or as a forced function call."""

    path = "/chat/completions"

    def __init__(self, settings: ApiPlannerSettings) -> None:
        self.settings = settings
        self.tool = settings.structured_output == "tool"
        self.token_field = settings.token_field()
        """`max_tokens` or `max_completion_tokens` (see `token_limit_field`); may switch once."""
        self._switched = False

    def headers(self, key: str | None) -> dict[str, str]:
        if not key:
            return {}
        if self.settings.api_key_header == "api-key":
            return {"api-key": key}
        return {"authorization": f"Bearer {key}"}

    def first(self, prompt: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": prompt}]

    def body(
        self, system: str | None, messages: list[dict[str, Any]], schema: dict[str, Any] = PLAN_STEPS_SCHEMA
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.settings.model,
            self.token_field: self.settings.max_tokens,
            "messages": ([{"role": "system", "content": system}] if system else []) + messages,
        }
        if self.tool:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": TOOL_NAME,
                        "description": _TOOL_DESCRIPTION,
                        "parameters": schema,
                    },
                }
            ]
            body["tool_choice"] = {"type": "function", "function": {"name": TOOL_NAME}}
        else:
            # Not strict: step arguments are free-form objects, which strict mode cannot express.
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "plan_steps", "schema": schema, "strict": False},
            }
        return body

    def read(self, data: Any) -> Answer:
        choices = data.get("choices") if isinstance(data, dict) else None
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        if not isinstance(first, dict) or not isinstance(message, dict):
            raise ValueError("it has no choices[0].message: not a chat-completions response")
        content = message.get("content")
        answer = Answer(said=content if isinstance(content, str) else "", reply=_reply(message))
        answer.truncated = first.get("finish_reason") == "length"
        if isinstance(message.get("refusal"), str) and message["refusal"]:
            answer.refusal = message["refusal"]
            return answer
        text: Any = content
        if self.tool:
            calls = message.get("tool_calls")
            call = next(
                (
                    c
                    for c in calls or []
                    if isinstance(c, dict) and (c.get("function") or {}).get("name") == TOOL_NAME
                ),
                None,
            )
            if call is None:
                answer.problem = f"the answer did not call {TOOL_NAME}"
                return answer
            answer.call_id = str(call.get("id", ""))
            text = call["function"].get("arguments")
        if isinstance(text, dict):  # some local servers hand back the arguments parsed
            answer.output = text
        elif not isinstance(text, str) or not text.strip():
            answer.problem = "the answer is empty"
        else:
            answer.output, answer.problem = _json(text)
        return answer

    def repair(self, messages: list[dict[str, Any]], answer: Answer, problems: str) -> None:
        messages.append(answer.reply)
        if answer.call_id:
            messages.append(
                {"role": "tool", "tool_call_id": answer.call_id, "content": _repair_text(problems)}
            )
        else:
            messages.append({"role": "user", "content": _repair_text(problems)})

    def refused(self, param: str) -> bool:
        other = "max_tokens" if self.token_field == "max_completion_tokens" else "max_completion_tokens"
        if self.settings.token_limit_field != "auto" or param != self.token_field or self._switched:
            return False
        log.info("%s refused %s; sending %s instead", self.settings.model, param, other)
        self.token_field = other
        self._switched = True
        return True


def _reply(message: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        reply["tool_calls"] = message["tool_calls"]
    return reply


def dialect_for(settings: ApiPlannerSettings) -> Dialect:
    return Anthropic(settings) if settings.kind == "anthropic" else OpenAi(settings)
