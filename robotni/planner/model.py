"""The optional model step: the prompt goes to an OpenAI-compatible chat-completions endpoint first
(ROBOTNI_PLANNER_LLM_URL, _KEY, _MODEL). Its answer is only a proposal: it must fit the plan schema here, and each
schedule must then pass the same checks as the rules' (robotni/planner/plan.py). Any failure is a ModelFailed
saying why, and the rules make the plan.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from robotni.config import Settings
from robotni.errors import RobotniError
from robotni.planner.schema import PlanSchema
from robotni.worktypes.registry import WorkerType

# A plan is a few hundred bytes; an answer past this is not one, and is not read further.
MAX_ANSWER_BYTES = 1024 * 1024
READ_CHUNK = 64 * 1024
INSTRUCTIONS = """You turn a person's request (English or Indonesian) into job schedules for Robotni.
Answer with one JSON object and nothing else:
{"schedules": [{"type": "<a worker type below>", "params": {...}, "cron": "<5-field cron>" or null,
"interval_seconds": <whole seconds> or null, "timezone": "<IANA name>" or null,
"from": {"<field>": "<the words of the request it came from>"}}],
"unplaced": ["<each word of the request you could not place>"]}
Each schedule has exactly one of cron and interval_seconds; params must fit the type's JSON Schema.
A null timezone means the request's. If the request says no time or names no type below, answer
{"schedules": [], "unplaced": []}. Never invent a type.
Worker types (name: description; params JSON Schema):
"""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other failure: following it would hand the key to another address."""

    def redirect_request(self, *_: object, **__: object) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


class ModelFailed(RobotniError):
    """The model gave no usable plan: unreachable, too slow, not JSON, not a plan, or a plan that does not hold."""


def configured(current: Settings) -> bool:
    return bool(current.planner_llm_url and current.planner_llm_model)


def instructions(types: Mapping[str, WorkerType]) -> str:
    listed = "\n".join(
        f"- {name}: {wtype.description or '(no description)'}; {json.dumps(wtype.params_schema, sort_keys=True)}"
        for name, wtype in sorted(types.items())
    )
    return INSTRUCTIONS + listed


def ask(prompt: str, timezone: str, types: Mapping[str, WorkerType], current: Settings) -> dict[str, Any]:
    """The model's plan as the plan schema loads it (schedules and unplaced words); ModelFailed otherwise."""
    body = {
        "model": current.planner_llm_model,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": instructions(types)},
            {"role": "user", "content": f"Timezone: {timezone}\nRequest: {prompt}"},
        ],
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if current.planner_llm_key:
        headers["Authorization"] = f"Bearer {current.planner_llm_key}"
    try:
        request = urllib.request.Request(current.planner_llm_url, json.dumps(body).encode(), headers, method="POST")
    except ValueError as exc:  # not a URL at all
        raise ModelFailed(f"ROBOTNI_PLANNER_LLM_URL: {exc}") from None
    content = _content(_post(request, current.planner_llm_timeout))
    try:
        answer = json.loads(_unfenced(content))
    except ValueError as exc:
        raise ModelFailed(f"the model's answer is not JSON: {exc}") from None
    if not isinstance(answer, dict):
        raise ModelFailed("the model's answer is not a JSON object")
    if not answer.get("schedules"):
        raise ModelFailed("the model found no schedule in the prompt")
    try:
        loaded: dict[str, Any] = PlanSchema().load(answer)
    except ValidationError as exc:
        raise ModelFailed(f"the model's answer does not fit the plan schema: {exc.messages}") from None
    return loaded


def _post(request: urllib.request.Request, timeout: float) -> bytes:
    """The response body; the timeout bounds the connection, each read, and the whole body's reading."""
    if request.type not in ("http", "https"):
        raise ModelFailed(f"ROBOTNI_PLANNER_LLM_URL must be http(s), not {request.type!r}")
    deadline = time.monotonic() + timeout
    try:
        with OPENER.open(request, timeout=timeout) as response:
            chunks, size = [], 0
            while chunk := response.read(READ_CHUNK):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise ModelFailed(f"the model's answer is over {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise TimeoutError
            return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        raise ModelFailed(f"the model's endpoint answered HTTP {exc.code}") from None
    except TimeoutError:
        raise ModelFailed(f"no answer from the model within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ModelFailed(f"no answer from the model within {timeout:g} s") from None
        raise ModelFailed(f"the model's endpoint cannot be reached: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:  # reset, or cut off mid-answer
        raise ModelFailed(f"the model's endpoint cannot be reached: {exc!r}") from None


def _content(raw: bytes) -> str:
    """choices[0].message.content of a chat-completions answer."""
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ModelFailed("the endpoint's answer is not a chat completion (choices[0].message.content)") from None
    if not isinstance(content, str):
        raise ModelFailed("the chat completion has no text content")
    return content


def _unfenced(content: str) -> str:
    """The JSON inside a ```json fence, which chat models add even when asked for JSON alone."""
    text = content.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text[3:-3].strip()
        text = text[4:].strip() if text.startswith("json") else text
    return text
