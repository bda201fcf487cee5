"""The payload codec: AES-GCM with a key ring (the newest encrypts, every key decrypts), plain
payloads passed through, and a clear refusal without a key."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from settings import Settings
from temporal_client.codec import EncryptionCodec, KeyRing, MissingKey, key_ring, search_key

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"user_id": "user-123"}')


async def test_a_payload_is_unreadable_encoded_and_itself_decoded() -> None:
    codec = EncryptionCodec(KeyRing.parse(KeyRing.new_key("k1")))
    [encoded] = await codec.encode([PLAIN])
    assert b"user-123" not in encoded.SerializeToString()
    assert encoded.metadata["encryption-key-id"] == b"k1"
    assert await codec.decode([encoded]) == [PLAIN]


async def test_a_key_is_rotated_without_losing_what_the_old_one_wrote() -> None:
    k1, k2 = KeyRing.new_key("k1"), KeyRing.new_key("k2")
    [old] = await EncryptionCodec(KeyRing.parse(k1)).encode([PLAIN])
    rotated = EncryptionCodec(KeyRing.parse(f"{k2},{k1}"))
    [new] = await rotated.encode([PLAIN])
    assert new.metadata["encryption-key-id"] == b"k2"  # the newest encrypts
    assert await rotated.decode([old, new]) == [PLAIN, PLAIN]  # every listed key decrypts
    with pytest.raises(ValueError, match="not in the key ring"):
        await EncryptionCodec(KeyRing.parse(k2)).decode([old])


async def test_payloads_written_before_encryption_pass_through() -> None:
    codec = EncryptionCodec(KeyRing.parse(KeyRing.new_key("k1")))
    assert await codec.decode([PLAIN]) == [PLAIN]


def test_no_key_stops_start_up_with_a_message_that_says_what_to_set() -> None:
    with pytest.raises(MissingKey, match="PAYLOAD_KEYS"):
        key_ring(Settings(payload_keys="", payload_keys_file=""))
    with pytest.raises(MissingKey, match="SEARCH_HASH_KEY"):
        search_key(Settings(search_hash_key=""))
    with pytest.raises(MissingKey, match="32 bytes"):
        KeyRing.parse("k1:c2hvcnQ=")


def test_the_search_hash_helper_reads_make_devs_key_without_the_variable(tmp_path: Path) -> None:
    import base64
    import os
    import subprocess
    import sys

    from domain.ids import user_search_hash

    key = base64.b64encode(os.urandom(32)).decode()
    (tmp_path / "search_hash_key").write_text(key + "\n")
    env = {k: v for k, v in os.environ.items() if k != "SEARCH_HASH_KEY"}
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-m", "api", "users", "search-hash", "user-123"],
                         cwd=root, env=env | {"DATA_DIR": str(tmp_path)}, capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"PaymentUserId='{user_search_hash(base64.b64decode(key), 'user-123')}'"
    refused = subprocess.run([sys.executable, "-m", "api", "users", "search-hash", "user-123"],
                             cwd=root, env=env | {"DATA_DIR": str(tmp_path / "none")},
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 2
    assert "SEARCH_HASH_KEY" in refused.stderr
