"""`python -m api` serves the API; `python -m api keys create|revoke ...` manages API keys."""

from __future__ import annotations

import argparse
import asyncio
import sys

from api.auth import SCOPES, create_key, revoke_key
from db.engine import make_engine
from settings import get_settings


async def _keys(args: argparse.Namespace) -> int:
    engine = make_engine(get_settings().database_url_or_dev, pool_size=1)
    try:
        if args.action == "create":
            scopes = args.scopes.replace(",", " ").split() if args.scopes else list(SCOPES)
            key_id, secret = await create_key(engine, tenant_id=args.tenant, name=args.name,
                                              scopes=scopes, secret=args.secret)
            print(f"key id: {key_id}\ntenant: {args.tenant}\nscopes: {' '.join(scopes)}")
            print(f"secret (shown once): {secret}")
            return 0
        if await revoke_key(engine, args.key_id):
            print(f"revoked {args.key_id}")
            return 0
        print(f"no active key {args.key_id}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m api")
    sub = parser.add_subparsers(dest="command")
    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(dest="action", required=True)
    create = ksub.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument("--tenant", default="default")
    create.add_argument("--scopes", help=f"comma or space separated; default all of {SCOPES}")
    create.add_argument("--secret", help=argparse.SUPPRESS)
    revoke = ksub.add_parser("revoke")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    if args.command == "keys":
        return asyncio.run(_keys(args))

    import uvicorn

    from api.app import create_app
    from settings import tracing

    s = get_settings()
    app = create_app(s, tracing=tracing.setup("paysaga-api"))
    uvicorn.run(app, host=s.api_host, port=s.api_port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
