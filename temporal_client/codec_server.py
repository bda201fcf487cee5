"""The codec server (`python -m temporal_client.codec_server`, on CODEC_HOST:CODEC_PORT, default
127.0.0.1:8081): Temporal's remote codec protocol over paysaga's key ring, so the Web UI and the
`temporal` CLI show decrypted payloads to the people allowed to see them.

`POST /decode` and `POST /encode` (Temporal's codec server protocol: a JSON `{"payloads": [...]}`
of protobuf `Payload`s, the namespace in `X-Namespace`), with CORS for the Web UI.

Who may decode: a caller with `Authorization: Bearer <platform operator key>` (checked like the
API's keys), or a request from an origin listed in CODEC_TRUSTED_ORIGINS (`make dev` lists its own
Web UI, so it shows decoded payloads without a login; a loopback origin is trusted under each of
its names: localhost, 127.0.0.1, [::1]). Everything else is 401/403.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from db.api_keys import authenticate
from db.engine import make_engine
from domain.access import OPERATOR
from settings import Settings
from temporal_client.codec import EncryptionCodec, key_ring

ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def trusted_origins(listed: str) -> set[str]:
    """The origins listed (comma-separated), each loopback one under every name this machine
    answers to: a Web UI opened at `http://127.0.0.1:8233` or `http://[::1]:8233` is the same
    UI as `http://localhost:8233`."""
    origins = set()
    for origin in (o.strip().rstrip("/") for o in listed.split(",")):
        if not origin:
            continue
        parts = urlsplit(origin)
        host = (parts.hostname or "").lower()
        if host in ("localhost", "127.0.0.1", "::1"):
            port = f":{parts.port}" if parts.port else ""
            origins |= {f"{parts.scheme}://{name}{port}" for name in LOOPBACK}
        else:
            origins.add(origin)
    return origins


def create_codec_app(settings: Settings, codec: PayloadCodec | None = None) -> FastAPI:
    codec = codec or EncryptionCodec(key_ring(settings))
    trusted = trusted_origins(settings.codec_trusted_origins)
    ui_origin = settings.temporal_ui_url.rstrip("/")
    engine = make_engine(settings.database_url_or_dev, pool_size=2)
    app = FastAPI(title="paysaga codec server", docs_url=None, redoc_url=None)

    def cors(request: Request, response: Response) -> Response:
        origin = request.headers.get("origin", "").rstrip("/")
        if origin and origin in trusted | {ui_origin}:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Vary"] = "Origin"
        return response

    async def allowed(request: Request) -> Response | None:
        if request.headers.get("origin", "").rstrip("/") in trusted:
            return None
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return JSONResponse({"error": "send an operator key: Authorization: Bearer <key>"},
                                status_code=401)
        principal = await authenticate(engine, header[7:].strip())
        if principal is None or principal.kind != OPERATOR:
            return JSONResponse({"error": "only platform operator keys decode payloads"},
                                status_code=403)
        return None

    async def handle(request: Request, transform: Any) -> Response:
        refused = await allowed(request)
        if refused is not None:
            return cors(request, refused)
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except json_format.ParseError:
            return cors(request, JSONResponse({"error": "the body is not a Payloads JSON"},
                                              status_code=400))
        result = Payloads(payloads=await transform(payloads.payloads))
        return cors(request, Response(json_format.MessageToJson(result),
                                      media_type="application/json"))

    @app.options("/{path:path}")
    async def preflight(request: Request, path: str) -> Response:
        return cors(request, Response(status_code=200))

    @app.post("/decode")
    async def decode(request: Request) -> Response:
        return await handle(request, codec.decode)

    @app.post("/encode")
    async def encode(request: Request) -> Response:
        return await handle(request, codec.encode)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> int:
    import uvicorn

    from settings import get_settings
    from temporal_client.codec import MissingKey

    s = get_settings()
    try:
        app = create_codec_app(s)
    except MissingKey as err:
        print(f"paysaga codec server: {err}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=s.codec_host, port=s.codec_port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
