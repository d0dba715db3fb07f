"""Validation errors as one line with bracketed field paths, and OpenAI's error shape (types by status)."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.api.errors import describe_validation_error, explain_validation_error, openai_error, speaks_openai


def error(loc: tuple[Any, ...], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def test_indices_are_bracketed_on_the_name_before_them() -> None:
    errors = [error(("body", "messages", 2, "content", 1, "image_url"), "Field required", "missing")]
    assert explain_validation_error(errors) == (
        "messages[2].content[1].image_url: Field required",
        "messages[2].content[1].image_url",
    )


def test_union_members_are_left_out_and_the_deepest_place_wins() -> None:
    errors = [
        error(("messages", 0, "content", "constrained-str"), "Input should be a valid string", "string_type"),
        error(("messages", 0, "content", "list[tagged-union[TextContent,ImageContent]]", 0), "expected a part"),
        error(("temperature",), "Input should be less than or equal to 2"),
    ]
    assert explain_validation_error(errors) == (
        "messages[0].content[0]: expected a part; temperature: Input should be less than or equal to 2",
        "messages[0].content[0]",  # the first field at fault
    )


def test_a_check_across_fields_names_its_field_in_brackets() -> None:
    dotted = error((), "Value error, messages.1.tool_call_id: 'c' answers no tool call")
    assert explain_validation_error([dotted]) == (
        "messages[1].tool_call_id: 'c' answers no tool call",
        "messages[1].tool_call_id",
    )
    assert explain_validation_error([error(("body",), "tools: two tools share a name (f)")])[1] == "tools"


@pytest.mark.parametrize(
    ("errors", "message"),
    [
        ([error(("body", 7), "JSON decode error", "json_invalid")], "the body is not valid JSON"),
        ([error((), "Input should be an object", "model_type")], "body: Input should be an object"),
    ],
)
def test_the_body_as_a_whole_has_no_param(errors: list[dict[str, Any]], message: str) -> None:
    assert explain_validation_error(errors) == (message, None)
    assert describe_validation_error(errors) == message


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (404, "invalid_request_error"),
        (413, "invalid_request_error"),
        (422, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (429, "rate_limit_error"),
        (500, "server_error"),
        (502, "server_error"),
        (504, "server_error"),
    ],
)
def test_openai_error_types_by_status(status: int, kind: str) -> None:
    assert openai_error(status, "some_code", "what happened", "field") == {
        "message": "what happened",
        "type": kind,
        "param": "field",
        "code": "some_code",
    }


def test_the_openai_face() -> None:
    assert all(map(speaks_openai, ["/v1/chat/completions", "/v1/embeddings", "/v1/models", "/v1/models/a/b"]))
    assert not any(map(speaks_openai, ["/v1/ai", "/v1/ai/async", "/v1/admin/keys", "/v1/modelsx", "/healthz"]))
