"""The official OpenAI Python SDK against a running Tollgate gateway.

Usage: python openai_sdk.py BASE_URL   (e.g. http://127.0.0.1:8080/v1)
Exits non-zero with a message on the first check that fails.
"""
import json
import sys

import openai


def main(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused-by-the-mock", max_retries=0, timeout=20)

    # A chat completion.
    r = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Hello SDK"}])
    assert r.choices[0].message.content == "Hello from Tollgate's mock provider. You said: Hello SDK", r
    assert r.usage is not None and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, r.usage

    # A stream, with usage at the end.
    pieces, usage = [], None
    stream = client.chat.completions.create(
        model="demo", stream=True, stream_options={"include_usage": True}, messages=[{"role": "user", "content": "Stream please"}]
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
    assert "".join(pieces) == "Hello from Tollgate's mock provider. You said: Stream please", pieces
    assert usage is not None and usage.completion_tokens > 0, usage

    # A tool call, then the tool result.
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    r = client.chat.completions.create(model="demo", tools=tools, messages=[{"role": "user", "content": "Weather in Paris?"}])
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather", r
    json.loads(call.function.arguments)
    r = client.chat.completions.create(
        model="demo",
        tools=tools,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert r.choices[0].message.content == "The tool returned: sunny", r

    # Streamed tool call deltas assemble into one call.
    name, args = "", ""
    for chunk in client.chat.completions.create(model="demo", tools=tools, stream=True, messages=[{"role": "user", "content": "Weather?"}]):
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                name += tc.function.name or ""
                args += tc.function.arguments or ""
    assert name == "get_weather" and json.loads(args) == {}, (name, args)

    # Embeddings.
    e = client.embeddings.create(model="demo", input=["one", "two"])
    # The in-process mock answers 64 dimensions by default (feature hashing of words).
    assert len(e.data) == 2 and len(e.data[0].embedding) == 64, e

    # Embeddings from Gemini (which answers floats) with the SDK's default encoding (base64).
    e = client.embeddings.create(model="emb", input=["one", "two"])
    floats = client.embeddings.create(model="emb", input=["one", "two"], encoding_format="float")
    assert len(e.data) == 2 and len(e.data[0].embedding) > 0, e
    for got, want in zip(e.data, floats.data):
        assert all(isinstance(x, float) for x in got.embedding), got
        assert all(abs(a - b) < 1e-6 for a, b in zip(got.embedding, want.embedding)), (got, want)

    # Errors surface as the SDK's exception types.
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("expected NotFoundError")
    except openai.NotFoundError as err:
        assert err.body["code"] == "model_not_found", err.body

    print("openai SDK checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
