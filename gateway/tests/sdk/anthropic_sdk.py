"""The official Anthropic Python SDK against a running Tollgate gateway (`/v1/messages`).

Usage: python anthropic_sdk.py BASE_URL MODEL...   (e.g. http://127.0.0.1:8080 demo claude)
Each MODEL is a route: text, a stream, a tool call and its result, token counting.
Exits non-zero with a message on the first check that fails.
"""
import sys

import anthropic

TOOLS = [{
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]


def check(client: anthropic.Anthropic, model: str) -> None:
    # Text.
    m = client.messages.create(
        model=model, max_tokens=200, system="Be brief.",
        messages=[{"role": "user", "content": "Hello SDK"}],
    )
    assert m.type == "message" and m.role == "assistant", m
    assert m.content[0].type == "text" and m.content[0].text, m
    assert m.stop_reason == "end_turn", m
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0, m.usage

    # A stream: the SDK's own accumulation must give the same kind of message.
    with client.messages.stream(
        model=model, max_tokens=200, messages=[{"role": "user", "content": "Stream please"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text, (text, final)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0, final

    # A tool call (streamed, so input_json_delta is exercised), then its result.
    with client.messages.stream(
        model=model, max_tokens=200, tools=TOOLS, tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        call_msg = stream.get_final_message()
    calls = [b for b in call_msg.content if b.type == "tool_use"]
    assert call_msg.stop_reason == "tool_use" and calls and calls[0].name == "get_weather", call_msg
    assert isinstance(calls[0].input, dict), calls[0]
    # The in-process mock (`demo`) calls tools with `{}`; the mock upstream fills the schema.
    assert model == "demo" or calls[0].input.get("city") == "mock", calls[0]
    m = client.messages.create(
        model=model, max_tokens=200, tools=TOOLS,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in call_msg.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "18C, sunny"}]},
        ],
    )
    assert m.stop_reason == "end_turn" and m.content[0].type == "text", m

    # Token counting.
    count = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "How many tokens?"}])
    assert count.input_tokens > 0, count


def main(base_url: str, models: list[str]) -> None:
    client = anthropic.Anthropic(base_url=base_url, api_key="unused-by-the-mock", max_retries=0, timeout=20)
    for model in models:
        try:
            check(client, model)
        except AssertionError as e:
            raise SystemExit(f"route {model}: {e!r}") from e
    try:
        client.messages.create(model="no-such-route", max_tokens=10, messages=[{"role": "user", "content": "x"}])
        raise SystemExit("an unknown model must raise")
    except anthropic.NotFoundError as e:
        assert e.body["error"]["type"] == "not_found_error", e.body
    print("anthropic SDK checks passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
