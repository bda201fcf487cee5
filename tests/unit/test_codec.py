"""The payload codec: AES-GCM with a key ring (the newest encrypts, every key decrypts), plain
payloads passed through, and a clear refusal without a key."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payload

from settings import Settings
from workflows.codec import EncryptionCodec, KeyRing, MissingKey, key_ring, search_key

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
