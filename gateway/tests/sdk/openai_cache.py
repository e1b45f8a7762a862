"""A replayed stream, read by the official OpenAI SDK: the same text, finish reason and usage
as the original, and the SDK sees a complete stream. Args: base URL, client key."""

import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2])


def run():
    raw = client.chat.completions.with_raw_response.create(
        model="cached",
        messages=[{"role": "user", "content": "sdk stream"}],
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    )
    cache = raw.headers.get("x-tollgate-cache")
    text, finish, usage = "", None, None
    for chunk in raw.parse():
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage.total_tokens
    return cache, text, finish, usage


first = run()
second = run()
assert first[0] == "miss", first
assert second[0] == "hit", second
assert first[1:] == second[1:], (first, second)
assert second[1] and second[2] in ("stop", "length") and second[3], second
print("ok", second)
