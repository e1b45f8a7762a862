"""The official OpenAI Python SDK's Responses API against a running Tollgate gateway.

Usage: python openai_responses_sdk.py BASE_URL MODEL [MODEL...]
Each MODEL is a route; `demo` is the in-process mock (whose answers are checked word for
word), the others any backend. A MODEL written `name:passthrough` is an OpenAI backend that
runs the Responses API itself (stateless mock upstream: `previous_response_id` is echoed).
Exits non-zero with a message on the first check that fails.
"""
import json
import sys

import openai

WEATHER = [{
    "type": "function",
    "name": "get_weather",
    "description": "Weather by city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]

# A 1x1 PNG.
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def check(client: openai.OpenAI, model: str, passthrough: bool) -> None:
    where = f"[{model}]"

    # Text with instructions.
    r = client.responses.create(model=model, instructions="Be brief.", input="Hello SDK", max_output_tokens=200)
    assert r.status == "completed" and r.output_text, (where, r)
    assert r.usage is not None and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens, (where, r.usage)
    if model == "demo":
        assert r.output_text == "Hello from Tollgate's mock provider. You said: Hello SDK", (where, r.output_text)

    # previous_response_id continues the conversation.
    r2 = client.responses.create(model=model, previous_response_id=r.id, input="And again", max_output_tokens=200)
    assert r2.previous_response_id == r.id and r2.output_text, (where, r2)
    if model == "demo":
        assert r2.output_text.endswith("You said: And again"), (where, r2.output_text)

    # A function tool round trip: the call, then its output.
    r = client.responses.create(model=model, input="Weather in Paris?", tools=WEATHER, max_output_tokens=200)
    calls = [item for item in r.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather", (where, r.output)
    json.loads(calls[0].arguments)
    r = client.responses.create(
        model=model,
        previous_response_id=r.id,
        tools=WEATHER,
        max_output_tokens=200,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
    )
    assert r.output_text, (where, r)
    if model == "demo":
        assert r.output_text == "The tool returned: sunny", (where, r.output_text)

    # The same round trip with the whole conversation sent again (no stored state).
    r = client.responses.create(
        model=model,
        tools=WEATHER,
        store=False,
        max_output_tokens=200,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather", "arguments": calls[0].arguments},
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "rainy"},
        ],
    )
    assert r.output_text and r.store is False, (where, r)

    # Image input.
    r = client.responses.create(
        model=model,
        max_output_tokens=200,
        input=[{"role": "user", "content": [
            {"type": "input_text", "text": "What is in this image?"},
            {"type": "input_image", "image_url": PIXEL},
        ]}],
    )
    assert r.status == "completed" and r.output_text, (where, r)

    # A stream, with the helper that assembles it.
    deltas = []
    with client.responses.stream(model=model, input="Stream please", max_output_tokens=200) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert final.status == "completed" and "".join(deltas) == final.output_text and final.output_text, (where, deltas, final)
    assert final.usage is not None and final.usage.output_tokens > 0, (where, final.usage)

    # A streamed tool call.
    with client.responses.stream(model=model, input="Weather?", tools=WEATHER, max_output_tokens=200) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather", (where, final.output)
    json.loads(calls[0].arguments)

    if not passthrough:
        # Stored responses can be read back and deleted.
        got = client.responses.retrieve(final.id)
        assert got.id == final.id and got.output[0].type == "function_call", (where, got)
        client.responses.delete(final.id)
        try:
            client.responses.retrieve(final.id)
            raise AssertionError(f"{where} expected NotFoundError after delete")
        except openai.NotFoundError:
            pass
        # Built-in tools are refused with a 400 naming the tool type.
        try:
            client.responses.create(model=model, input="news?", tools=[{"type": "web_search"}])
            raise AssertionError(f"{where} expected BadRequestError")
        except openai.BadRequestError as err:
            assert "web_search" in str(err), (where, err)


def main(base_url: str, models: list) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused-by-the-mock", max_retries=0, timeout=20)
    for spec in models:
        model, _, mode = spec.partition(":")
        check(client, model, mode == "passthrough")
    print("openai SDK Responses checks passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
