"""FastAPI's bare floor for a cache hit: one route, the same request model, one Redis GET.

`python -m bench.fastapi_floor --port P --redis URL --key K` serves POST /ask under uvicorn as
`rag serve` runs it (one worker, uvloop + httptools). Whatever it costs is what any FastAPI
route that answers from Redis costs; bench/cache_ask.py measures it beside the service's
cached /ask and /search in the same run.
"""

from __future__ import annotations

import argparse

import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, Field


class AskRequest(BaseModel):
    question: str
    corpus: str = "default"
    top_k: int = Field(default=5, ge=1, le=50)
    use_cache: bool = True


def floor_app(redis_url: str, key: str) -> FastAPI:
    app = FastAPI()
    client = aioredis.Redis.from_url(redis_url)

    @app.post("/ask")
    async def ask(body: AskRequest) -> Response:
        value = await client.get(key)
        return Response(content=value or b"{}", media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    uvicorn.run(floor_app(args.redis, args.key), host="127.0.0.1", port=args.port, loop="uvloop",
                http="httptools", log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
