"""`python -m api` serves the API; `python -m api keys create|list|revoke ...` manages API keys.

    keys create --name N --tenant T [--scopes ...]   a tenant key (tenant scopes only)
    keys create --name N --operator [--scopes ...]   a platform operator key (spans every tenant)
    keys list                                        operator keys, then tenant keys by tenant
    users search-hash USER_ID                        the PaymentUserId value to query Temporal by
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy.ext.asyncio import AsyncEngine

from db.api_keys import create_key, create_operator_key, list_keys, revoke_key
from db.engine import make_engine
from domain.access import OPERATOR_SCOPES, TENANT_SCOPES, ScopeError
from settings import get_settings


async def _keys(args: argparse.Namespace) -> int:
    engine = make_engine(get_settings().database_url_or_dev, pool_size=1)
    try:
        if args.action == "create":
            return await _create(engine, args)
        if args.action == "list":
            _print_keys(await list_keys(engine))
            return 0
        if await revoke_key(engine, args.key_id):
            print(f"revoked {args.key_id}")
            return 0
        print(f"no active key {args.key_id}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()


async def _create(engine: AsyncEngine, args: argparse.Namespace) -> int:
    asked = args.scopes.replace(",", " ").split() if args.scopes else None
    try:
        if args.operator:
            key_id, secret = await create_operator_key(engine, name=args.name, scopes=asked,
                                                       secret=args.secret)
        else:
            key_id, secret = await create_key(engine, tenant_id=args.tenant, name=args.name,
                                              scopes=asked, secret=args.secret)
    except ScopeError as err:
        print(f"refused: {err}", file=sys.stderr)
        return 2
    kind = "platform operator (every tenant)" if args.operator else f"tenant {args.tenant}"
    print(f"key id: {key_id}\nkind: {kind}")
    print(f"scopes: {' '.join(asked or (OPERATOR_SCOPES if args.operator else TENANT_SCOPES))}")
    print(f"secret (shown once): {secret}")
    return 0


def _print_keys(keys: list[dict[str, object]]) -> None:
    for title, kind in (("platform operator keys (every tenant)", "operator"),
                        ("tenant keys", "tenant")):
        print(f"{title}:")
        mine = [k for k in keys if k["kind"] == kind]
        for k in mine:
            state = f"revoked {k['revoked_at']:%Y-%m-%d}" if k["revoked_at"] else "active"
            tenant = "" if kind == "operator" else f"  tenant={k['tenant_id']}"
            print(f"  {k['id']}  {k['name']!r}{tenant}  scopes={k['scopes']}  {state}")
        if not mine:
            print("  (none)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m api")
    sub = parser.add_subparsers(dest="command")
    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(dest="action", required=True)
    create = ksub.add_parser("create")
    create.add_argument("--name", required=True)
    kind = create.add_mutually_exclusive_group()
    kind.add_argument("--tenant", default="default", help="the tenant a tenant key is bound to")
    kind.add_argument("--operator", action="store_true",
                      help="a platform operator key (reconciliation; spans every tenant)")
    create.add_argument("--scopes", help="comma or space separated; default all of the kind's: "
                        f"tenant {' '.join(TENANT_SCOPES)}; operator {' '.join(OPERATOR_SCOPES)}")
    create.add_argument("--secret", help=argparse.SUPPRESS)
    ksub.add_parser("list", help="every key (never a secret): operator keys, then tenant keys")
    revoke = ksub.add_parser("revoke")
    revoke.add_argument("key_id")
    users = sub.add_parser("users", help="operators' helpers about users")
    usub = users.add_subparsers(dest="action", required=True)
    hashed = usub.add_parser("search-hash", help="the PaymentUserId search attribute of a user id "
                             "(an HMAC: Temporal never holds the id)")
    hashed.add_argument("user_id")
    args = parser.parse_args(argv)
    if args.command == "keys":
        return asyncio.run(_keys(args))
    if args.command == "users":
        from domain.ids import user_search_hash
        from temporal_client.codec import MissingKey, search_key

        try:
            value = user_search_hash(search_key(get_settings(), or_dev=True), args.user_id)
        except MissingKey as err:
            print(f"refused: {err}", file=sys.stderr)
            return 2
        print(f"PaymentUserId='{value}'")
        return 0

    import uvicorn

    from api.app import create_app
    from telemetry import heap, tracing
    from temporal_client.codec import MissingKey, key_ring, search_key

    s = get_settings()
    try:
        key_ring(s), search_key(s)
    except MissingKey as err:
        print(f"paysaga API: {err}", file=sys.stderr)
        return 2
    app = create_app(s, tracing=tracing.setup("paysaga-api"))
    heap.settle()  # the process's, not the app's: tests create apps in their own process
    uvicorn.run(app, host=s.api_host, port=s.api_port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
