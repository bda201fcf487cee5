"""`python -m deploy`: roll a build of the workers out, ramp it, roll back, see what runs where.

    python -m deploy status                    the routing, every version, runs pinned to each
    python -m deploy promote [--ramp PCT]      this checkout's build: replay gate, then current
                                               (or ramping PCT %); refused -> exit 3, unchanged
    python -m deploy gate                      the replay gate alone
    python -m deploy rollback                  from the build to return to (still running): make
                                               it current again; runs that took the newer
                                               build's steps stay pinned there
    python -m deploy drained --build-id B      exit 0 when no run is pinned to B (stop it then)

TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, WORKER_DEPLOYMENT_NAME and the payload
keys come from the environment as for the worker (without PAYLOAD_KEYS*, the key ring `make dev`
keeps in DATA_DIR); WORKER_BUILD_ID or the code names the build.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion

from deploy import versions
from deploy.gate import replay_gate
from deploy.rollout import Refused, promote, roll_back
from release.build import build_id
from settings import Settings, get_settings
from temporal_client.codec import MissingKey, key_ring
from temporal_client.converter import data_converter
from worker.main import WORKFLOWS


def with_keys(s: Settings) -> Settings:
    """The payload keys from the environment, else the ring `make dev` made in DATA_DIR."""
    made = Path(s.data_dir) / "payload_keys"
    if not s.payload_keys and not s.payload_keys_file and made.exists():
        return s.model_copy(update={"payload_keys_file": str(made)})
    return s


async def connect(s: Settings) -> Client:
    return await Client.connect(s.temporal_address, namespace=s.temporal_namespace,
                                data_converter=data_converter(key_ring(s)))


async def status(client: Client, s: Settings) -> int:
    state = await versions.deployment(client, s.worker_deployment_name)
    if state is None:
        print(f"no worker of deployment {s.worker_deployment_name} has polled yet")
        return 1
    print(f"deployment {state.name}: current {state.current or '-'}, "
          f"ramping {state.ramping or '-'} ({state.ramp_percentage:g} %)")
    print(f"this checkout's build: {build_id(s)}")
    for v in state.versions:
        version = WorkerDeploymentVersion(state.name, v.build_id)
        pinned = await versions.open_pinned(client, version)
        print(f"  {v.build_id:<28} {v.status:<9} {v.drainage or '-':<9} {pinned} open pinned runs")
    return 0


async def run(args: argparse.Namespace) -> int:
    s = with_keys(get_settings())
    client = await connect(s)
    mine = WorkerDeploymentVersion(s.worker_deployment_name,
                                   getattr(args, "build_id", "") or build_id(s))
    try:
        if args.command == "status":
            return await status(client, s)
        if args.command == "gate":
            report = await replay_gate(client, s.worker_deployment_name, mine, WORKFLOWS,
                                       task_queue=s.temporal_task_queue)
            print("\n".join(report.lines()))
            return 3 if report.refused else 0
        if args.command == "promote":
            report = await promote(client, mine, WORKFLOWS, task_queue=s.temporal_task_queue,
                                   percentage=args.ramp, wait_seconds=args.wait)
            print("\n".join(report.lines()))
            print(f"{mine.deployment_name}:{mine.build_id} is "
                  + ("current" if args.ramp is None else f"ramping at {args.ramp:g} %"))
            return 0
        if args.command == "rollback":
            ours = mine.build_id == build_id(s)  # else this checkout cannot replay its runs
            back = await roll_back(client, mine, WORKFLOWS if ours else None,
                                   wait_seconds=args.wait)
            print(f"{mine.deployment_name}:{mine.build_id} is current again; from {back.left}: "
                  f"{back.moved} open runs moved back, {len(back.pinned)} kept there "
                  f"(pinned: they took its steps{'' if ours else '; no replay from here'}):")
            for pinned in back.pinned:
                print(f"  {pinned}")
            return 0
        if args.command == "drained":
            left = await versions.open_pinned(client, mine)
            print(f"{left} open runs pinned to {mine.build_id}\n"
                  f"  temporal workflow count --query \"{versions.pinned_query(mine)}\"")
            return 0 if left == 0 else 1
    except Refused as refused:
        print(refused, file=sys.stderr)
        print("refused: nothing changed", file=sys.stderr)
        return 3
    except versions.NotPolling as err:
        print(f"refused: {err}", file=sys.stderr)
        return 2
    return 2


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="the routing, every version, runs pinned to each")
    for name, text in (("promote", "replay gate, then make this build current or ramping"),
                       ("gate", "the replay gate alone"),
                       ("rollback", "make this build (still running) current again"),
                       ("drained", "exit 0 when no open run is pinned to the build")):
        one = sub.add_parser(name, help=text)
        one.add_argument("--build-id", default="",
                         help="the build (default: this checkout's, or WORKER_BUILD_ID)")
        if name == "promote":
            one.add_argument("--ramp", type=float, metavar="PCT",
                             help="ramp to PCT %% instead of making it current")
        if name in ("promote", "rollback"):
            one.add_argument("--wait", type=float, default=60,
                             help="seconds to wait for the build's workers to poll")
    args = parser.parse_args(argv)
    try:
        key_ring(with_keys(get_settings()))
    except MissingKey as err:
        print(f"paysaga deploy: {err}", file=sys.stderr)
        return 2
    return asyncio.run(run(args))


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # a short-lived client process can abort in interpreter teardown while the SDK's Rust
    # threads still run ("PyGILState_Release ... finalizing", temporalio/sdk-python#300): the
    # work is done and said, so skip the teardown
    os._exit(code)
