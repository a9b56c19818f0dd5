"""The API's one JSON parser: strict where the standard library is lenient.

- **Duplicate keys.** `json.loads` keeps the last one, so `{"node_count": 1, "node_count": 2}`
  would request two nodes while a reader of the body sees one. Refused: 400
  `validation_error` naming the key.
- **Depth.** `json` recurses once per nesting level and raises `RecursionError` (a 500) near
  1,000 levels. No body of this API nests deeper than 2, so a body nested deeper than
  `MAX_DEPTH` is refused before it is parsed: 400 `malformed_request`.
- **Lone surrogates** (`"\\ud800"`): valid JSON escapes, but not Unicode text. They can be neither
  stored nor encoded back into a response (UTF-8 refuses them), so they are refused as
  malformed: 400 `malformed_request`.
- `NaN` and `Infinity` are not JSON: refused, as DRF's strict mode does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rest_framework import exceptions
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32

# A JSON string (escapes included) or one bracket: what the depth scan needs to see.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_SURROGATE = re.compile("[\ud800-\udfff]")


class MalformedJSON(exceptions.ParseError):
    """A body that is not acceptable JSON; `extra` says why (rendered under `extra`)."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.extra = extra


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether `text` opens more than `limit` nested arrays or objects (brackets inside strings
    do not count). Linear, without recursion, so any input is safe to scan."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def has_lone_surrogate(value: Any) -> bool:
    """Whether any string in a parsed JSON value (keys included) holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads(raw: bytes) -> Any:
    """Parse a request body by the rules of the module docstring; raise DRF errors."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSON("The body is not UTF-8 text.", reason="not_utf8") from exc
    if too_deep(text):
        raise MalformedJSON(
            f"JSON nested deeper than {MAX_DEPTH} levels.", reason="too_deep", max_depth=MAX_DEPTH
        )
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except DuplicateKey as exc:
        raise exceptions.ValidationError(
            {exc.key: ["Given more than once in one JSON object."]}, code="duplicate_key"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise MalformedJSON(f"JSON parse error - {exc}", reason="invalid_json") from None
    if has_lone_surrogate(data):
        raise MalformedJSON(
            "JSON strings must be Unicode text: a lone surrogate escape (such as \\ud800) "
            "is not allowed.",
            reason="lone_surrogate",
        )
    return data


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with the refusals of the module docstring."""

    def parse(self, stream, media_type=None, parser_context=None):
        return loads(stream.read() if stream is not None else b"")
