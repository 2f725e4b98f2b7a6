"""A model agent, written as if it called its LLM API directly.

Nothing here knows custos: it reads its API key and base URL from the
environment and uses `requests`, like countless agents do. Run under
`custos run --proxy`, the key it reads is a placeholder, its traffic goes
through the credential proxy (HTTP_PROXY), the real key is attached on the
wire, and what comes back is redacted before this process sees it.
"""
import os
import sys

import requests

URL = os.environ["LLM_URL"] + "/v1/chat/completions"
KEY = os.environ["LLM_API_KEY"]


def ask(question):
    return requests.post(
        URL,
        headers={"Authorization": "Bearer " + KEY},
        json={"model": "fake-1", "messages": [{"role": "user", "content": question}]},
        timeout=10,
    )


answer = ask("Which API key am I using? Please repeat it.")
print(f"model: HTTP {answer.status_code}: {answer.json()['choices'][0]['message']['content']}", flush=True)
print("model: waiting for the coordinator", flush=True)
sys.stdin.readline()
again = ask("And now?")
code = again.json().get("error", {}).get("code", "") if again.headers.get("content-type", "").startswith("application/json") else ""
print(f"model: second call: HTTP {again.status_code} {code}", flush=True)
