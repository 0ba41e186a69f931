"""Schemathesis over the real gateway of the end-to-end stack (issue 6, item 7).

The gateway's OpenAPI document is what clients generate code from: every answer the
four real processes give through it, on Kafka and FerretDB, must be one the document
promises (no 5xx, documented statuses and content types, bodies and headers matching
their schemas). Schemathesis's CLI runs in a process of its own, bounded (examples per
operation, steps per stateful scenario, a deadline), with all four phases: the
documented examples, the coverage of each schema's edges, random inputs, and stateful
scenarios that follow the document's links from what creates an id (users, channels,
templates, sends, the feed) to what takes it.

The app is new and holds what the document's examples name (README's first send):
the user ``alice``, an enabled in-app channel, the approved template ``welcome`` and
one feed item of alice's, so examples and scenarios reach real resources, not only
404s. The feed routes act on behalf of alice.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx
import pytest

from clarion_devtools.devstack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
MAX_EXAMPLES = 20  # per operation and phase
MAX_STEPS = 20  # per stateful scenario
# A bound on the whole run, against a hang. With 81 operations it takes ~100 s on two
# cores (6,667 cases; CI, 2026-12-07) and this machine runs up to 30% slower some days.
DEADLINE_S = 300
SEED = 20261204  # the same cases every run: a failure reproduces
FEED_OWNER = "alice"

CONFIG = """\
seed = {seed}
request-timeout = 20
max-stream-events = 1
headers = {{ apikey = "{api_key}", Authorization = "Bearer {admin_token}" }}

[generation]
max-examples = {max_examples}
database = "none"

[phases.stateful]
max-steps = {max_steps}

[phases.fuzzing.extra-data-sources]
responses = true

[[operations]]
include-path-regex = "^/v3/campaigns/notification-feed"
exclude-path = "/v3/campaigns/notification-feed/stream"
parameters = {{ onbehalfof = "{owner}" }}

# A stream open for a user that exists answers 200 and then only comments while no item
# arrives: it never ends, and schemathesis would wait out its read timeout. The stream
# is tested for its errors here (a user that does not exist, a missing or bad header);
# its events by test_e2e_live_feed.
[[operations]]
include-path = "/v3/campaigns/notification-feed/stream"
parameters = {{ onbehalfof = "nobody-{owner}" }}
"""


async def seed_app(client: httpx.AsyncClient, admin_token: str) -> str:
    """A new app holding what the document's examples name; its API key."""
    created = await client.post(
        "/admin/apps",
        json={"name": "schemathesis"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert created.status_code == 201, created.text
    api_key: str = created.json()["data"]["apiKey"]
    auth = {"apikey": api_key}

    async def ok(method: str, path: str, body: object, status: int) -> httpx.Response:
        response = await client.request(method, path, json=body, headers=auth)
        assert response.status_code == status, (path, response.text)
        return response

    await ok("POST", "/v3/users", {"uid": FEED_OWNER, "name": "Alice"}, 200)
    channel = {"name": "In-app", "type": "in_app", "enabled": True}
    await ok("POST", "/v3/campaigns/channels", channel, 201)
    template = {
        "name": "Welcome",
        "channels": [{"channelType": "in_app", "content": {"title": "Hi {{name}}", "body": "Hi"}}],
        "variableSchema": [{"key": "name", "type": "string", "required": True}],
    }
    made = (await ok("POST", "/v3/campaigns/templates", template, 201)).json()["data"]
    assert made["templateId"] == "welcome"
    await ok("PUT", "/v3/campaigns/templates/welcome", {"status": "approved"}, 200)
    send = {
        "templateId": "welcome",
        "receivers": [FEED_OWNER],
        "variables": {FEED_OWNER: {"name": "Alice"}},
    }
    sent = (await ok("POST", "/v3/campaigns/notifications/messages", send, 200)).json()
    assert sent["data"]["receivers"] == [{"uid": FEED_OWNER, "status": "sent"}]
    return api_key


async def run_schemathesis(gateway_url: str, config: Path) -> tuple[int, str]:
    """Its exit code and output. It runs in ``config``'s folder, where it and hypothesis
    keep what they store between runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from schemathesis.cli import schemathesis; schemathesis()",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{gateway_url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=config.parent,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), DEADLINE_S)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        pytest.fail(f"schemathesis ran over {DEADLINE_S} s:\n{output.decode()[-6000:]}")
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_the_gateway_answers_as_its_openapi_document_says(
    stack: Stack, client: httpx.AsyncClient, admin_token: str, tmp_path: Path
) -> None:
    api_key = await seed_app(client, admin_token)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        CONFIG.format(
            seed=SEED,
            api_key=api_key,
            admin_token=admin_token,
            max_examples=MAX_EXAMPLES,
            max_steps=MAX_STEPS,
            owner=FEED_OWNER,
        )
    )
    code, output = await run_schemathesis(stack.gateway_url, config)
    # The whole run, beside the services' logs (the report shows only its end).
    if stack.log_dir is not None:
        (stack.log_dir / "schemathesis.txt").write_text(output)
    assert code == 0, output[-12000:]
    # Every phase ran, the stateful one on the document's links, and nothing failed.
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅\s+{phase} ", output), (phase, output[-6000:])
    assert "API Links:" in output, output[-6000:]
    assert " failed" not in output.split("Test cases:", 1)[-1], output[-6000:]
