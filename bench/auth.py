"""What trusted audit costs per request, measured in-process with no broker (pure CPU).

Signing (the client's side), verifying (the writer's), and the writer's whole batch step for a
one-item put (decode, verify, policy, handle, hash-chain the Mutation, encode) with and without a
keyring and a policy, and signed by the HTTP gateway on behalf of its caller (delegation, §14.1). One thread, warm: the same keys and a small view, each figure the best of a few
rounds so that a busy machine inflates it as little as possible.

Example::

    rows = auth_rows(requests=2_000)
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventconfig.client.wire import request_headers
from eventconfig.codec import default_codec
from eventconfig.model import ON_BEHALF_OF_HEADER, Version
from eventconfig.signing import Signer, public_key_text
from eventconfig.view.reader import DictReader
from eventconfig.writer.auth import Authenticator, Keyring
from eventconfig.writer.batch import BatchConfig, RawRequest, process_batch
from eventconfig.writer.policy import Policy

from bench.report import Row

ACTOR = "bench-writer"
GATEWAY, CALLER = "bench-gateway", "bench-user@example.com"
DEPLOYMENT = "bench"
_ROUNDS = 3


def _best_us(work: Callable[[], None], count: int) -> float:
    """Microseconds per item of ``work`` (which does ``count`` items), best of a few rounds."""
    best = float("inf")
    for _ in range(_ROUNDS):
        started = time.perf_counter()
        work()
        best = min(best, (time.perf_counter() - started) / count * 1e6)
    return best


def auth_rows(requests: int) -> list[Row]:
    codec = default_codec()
    key = Ed25519PrivateKey.generate()
    signer, gateway = Signer(ACTOR, key, DEPLOYMENT), Signer(GATEWAY, key, DEPLOYMENT)
    public = public_key_text(key.public_key())
    keyring = Keyring.parse({"actors": {ACTOR: {"keys": [public]}, GATEWAY: {"keys": [public], "delegates": ["*"]}}})
    policy = Policy.parse({"admins": [], "rules": [{"who": [ACTOR, CALLER], "workspaces": ["bench"],
                                                    "access": "read-write"}]})
    now_ms = int(time.time() * 1000)
    values = [codec.encode("ConfigRequest", {"operation": "put", "workspace": "bench",
                                             "values": [{"type": "kv", "key": f"k{i % 100}", "value": "v" * 256}]})
              for i in range(requests)]
    ids = [uuid.uuid4().hex for _ in range(requests)]
    plain = [RawRequest(i, value, request_headers(ids[i], ACTOR)) for i, value in enumerate(values)]
    signed = [RawRequest(i, value, signer.sign(value, request_headers(ids[i], ACTOR), now_ms))
              for i, value in enumerate(values)]
    delegated = [RawRequest(i, value, gateway.sign(value, [*request_headers(ids[i], CALLER),
                                                           (ON_BEHALF_OF_HEADER, CALLER.encode())], now_ms))
                 for i, value in enumerate(values)]

    def sign_all() -> None:
        for i, value in enumerate(values):
            signer.sign(value, request_headers(ids[i], ACTOR), now_ms)

    def verify_all() -> None:
        auth = Authenticator(keyring, 300_000, DEPLOYMENT)
        for record in signed:
            auth.verify(record.value or b"", record.headers, ids[record.offset], record.offset, now_ms)

    def batches(records: list[RawRequest], trusted: bool) -> Callable[[], None]:
        def run() -> None:
            auth = Authenticator(keyring, 300_000, DEPLOYMENT) if trusted else None
            for start in range(0, len(records), 100):
                result = process_batch(records[start:start + 100], DictReader({}), {}, Version(0), BatchConfig(),
                                       now_ms, codec, auth=auth, policy=policy if trusted else None)
                assert not result.dlq, "every request is accepted"
        return run

    base = _best_us(batches(plain, trusted=False), requests)
    trusted = _best_us(batches(signed, trusted=True), requests)
    on_behalf = _best_us(batches(delegated, trusted=True), requests)
    signature = base64.b64decode(dict(signed[0].headers)["signature"])
    note = (f"{requests:,} one-item puts of 256 B, batches of 100, best of {_ROUNDS}; Ed25519 ({len(signature)} B "
            "signatures); no broker, one thread")
    return [
        Row("auth", "sign a request (client)", _best_us(sign_all, requests), "µs", note=note),
        Row("auth", "verify a request (writer)", _best_us(verify_all, requests), "µs", note=note),
        Row("auth", "writer batch step per put, no keyring or policy", base, "µs",
            note=f"the history hash chain is always on; {note}"),
        Row("auth", "writer batch step per put, keyring + policy", trusted, "µs",
            note=f"overhead {trusted - base:.0f} µs per request ({trusted / base:.1f}×); {note}"),
        Row("auth", "writer batch step per put, gateway on behalf of a caller + policy", on_behalf, "µs",
            note=f"delegation adds {on_behalf - trusted:.0f} µs to a signed put; {note}"),
    ]
