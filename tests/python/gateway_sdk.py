"""The official `openai` Python SDK against a running `milc gateway`: what a team's service sees.

Run by tests/tests/gateway.rs with MILC_GATEWAY_URL and MILC_GATEWAY_KEY set; routes:
  support       one healthy arm
  limited       an arm whose upstream always answers 429 (no retries): passed through
  flaky         an arm whose upstream answers 429 once per request body, then 200: retried
Each check prints one line; any failure raises and the process exits non-zero.
"""

import os
import sys

import openai
from openai import OpenAI

URL = os.environ["MILC_GATEWAY_URL"]
KEY = os.environ["MILC_GATEWAY_KEY"]
client = OpenAI(base_url=URL, api_key=KEY, max_retries=0)
MESSAGES = [{"role": "user", "content": "Summarize: the printer on floor 3 is on fire."}]


def check(name, cond, detail=""):
    if not cond:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok {name}")


# Non-stream, with the gateway's headers on the raw response.
raw = client.chat.completions.with_raw_response.create(model="support", messages=MESSAGES)
r = raw.parse()
check("non-stream answer", bool(r.choices[0].message.content), r)
check("non-stream usage", r.usage is not None and r.usage.completion_tokens > 0, r.usage)
check("call id header", raw.headers.get("x-milc-call-id", "").startswith("gw-"), dict(raw.headers))
check("arm header", raw.headers.get("x-milc-arm") == "a", dict(raw.headers))

# Stream without include_usage: content, and no usage chunk.
chunks = list(client.chat.completions.create(model="support", messages=MESSAGES, stream=True))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("stream content", len(text) > 0, chunks[:3])
check("stream without usage", all(c.usage is None for c in chunks), chunks[-1])

# Stream with include_usage: the last chunk carries the totals and no choices.
chunks = list(
    client.chat.completions.create(
        model="support", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
)
last = chunks[-1]
check("stream usage chunk", last.usage is not None and last.usage.completion_tokens > 0, last)
check("usage chunk has no choices", last.choices == [], last)

# Embeddings through a route.
e = client.embeddings.create(model="support", input=["a ticket", "another ticket"])
check("embeddings", len(e.data) == 2 and len(e.data[0].embedding) > 0, e)

# Models: the routes.
ids = [m.id for m in client.models.list()]
check("models are the routes", "support" in ids and "limited" in ids, ids)

# 401 with a wrong key.
try:
    OpenAI(base_url=URL, api_key="milc-wrong", max_retries=0).chat.completions.create(
        model="support", messages=MESSAGES
    )
    check("401", False, "no error")
except openai.AuthenticationError as err:
    check("401", err.status_code == 401 and err.code == "invalid_api_key", err)

# 404 for an unknown route.
try:
    client.chat.completions.create(model="no-such-route", messages=MESSAGES)
    check("404", False, "no error")
except openai.NotFoundError as err:
    check("404", err.status_code == 404 and err.code == "model_not_found", err)

# Upstream 429 passed through with its Retry-After.
try:
    client.chat.completions.create(model="limited", messages=MESSAGES)
    check("429 passed through", False, "no error")
except openai.RateLimitError as err:
    check(
        "429 passed through",
        err.status_code == 429 and "retry-after" in err.response.headers,
        dict(err.response.headers),
    )

# Upstream 429 once, retried by the gateway: the client sees an answer.
r = client.chat.completions.create(model="flaky", messages=MESSAGES)
check("429 retried", bool(r.choices[0].message.content), r)

print("all SDK checks passed")
sys.exit(0)
