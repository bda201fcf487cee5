"""The random bytes behind nonces and ids: each handed out once, across the pool's refills and
across a fork (a child that handed out its parent's bytes would reuse AES-GCM nonces)."""

from __future__ import annotations

import os

from temporalio.api.common.v1 import Payload

from domain import entropy
from domain.ids import new_id
from temporal_client.codec import EncryptionCodec, KeyRing


def test_no_bytes_are_handed_out_twice_across_refills() -> None:
    tokens = [entropy.token_bytes(12) for _ in range(20_000)]  # 240 KB: several refills
    assert all(len(t) == 12 for t in tokens)
    assert len(set(tokens)) == len(tokens)


async def test_every_payload_gets_its_own_nonce() -> None:
    codec = EncryptionCodec(KeyRing.parse(KeyRing.new_key("k1")))
    same = Payload(metadata={"encoding": b"json/plain"}, data=b'"same"')
    sealed = await codec.encode([same] * 500)
    assert len({p.data[:12] for p in sealed}) == 500  # the nonce leads each ciphertext
    assert await codec.decode(sealed) == [same] * 500


def test_a_forked_child_draws_its_own_bytes() -> None:
    entropy.token_bytes(1)  # the parent's pool holds bytes the child would inherit
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the next bytes it would hand out
        os.write(write, entropy.token_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.waitpid(pid, 0)
    assert child != entropy.token_bytes(32)  # the parent's next 32 bytes


def test_ids_are_drawn_from_it() -> None:
    ids = {new_id("jnl") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("jnl_") and len(i) == 4 + 24 for i in ids)
