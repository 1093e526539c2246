"""The JSON of a cache hit, built from the stored bytes without parsing them.

Shared by the routes and the ASGI fast path, so a hit reads the same whichever serves it.
"""

from __future__ import annotations

import json


def hit_body(raw: bytes, *, tier: str, version: int) -> bytes:
    info = {"answer_hit": tier == "answers", "retrieval_hit": tier == "retrieval",
            "embed_hits": 0, "embed_misses": 0}
    if tier == "retrieval":
        body = b'{"results":' + raw + b',"corpus_version":' + str(version).encode()
        return body + b',"cache_info":' + json.dumps(info).encode() + b"}"
    return raw[:-1] + b',"cache_info":' + json.dumps(info).encode() + b"}"
