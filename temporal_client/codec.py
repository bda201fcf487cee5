"""Payload encryption (AES-GCM, as Temporal's encryption sample): everything paysaga writes to
Temporal, inputs, results, memos, update arguments, failures' messages and details, is encrypted
in the client and the worker; the server and anyone who reads its database see ciphertext.

A key ring: every key has an id; the first encrypts, every listed key decrypts, so a key is
rotated by putting a new one first and keeping the old ones until no history needs them.
Payloads written before encryption (no `binary/encrypted` encoding) pass through untouched, so
older histories still replay.

    PAYLOAD_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"   (newest first)
    PAYLOAD_KEYS_FILE=/run/secrets/paysaga-payload-keys          (one `id:base64` per line)
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from domain import entropy
from settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


class MissingKey(RuntimeError):
    """No payload key is configured: paysaga will not write plain payloads to Temporal."""


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[tuple[str, bytes], ...]  # (id, 32-byte key), newest first

    @property
    def current(self) -> tuple[str, bytes]:
        return self.keys[0]

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        keys = []
        for item in text.replace("\n", ",").split(","):
            if not item.strip():
                continue
            kid, _, encoded = item.strip().partition(":")
            key = base64.b64decode(encoded)
            if not kid or len(key) != 32:
                raise MissingKey(f"payload key {kid or '?'} must be `id:<base64 of 32 bytes>`")
            keys.append((kid, key))
        if not keys:
            raise MissingKey("no payload key")
        return cls(tuple(keys))

    @staticmethod
    def new_key(key_id: str) -> str:
        """A fresh `id:base64` line (what `make dev` writes into .data/payload_keys)."""
        return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def key_ring(s: Settings) -> KeyRing:
    """The configured key ring; MissingKey (a clear message) when there is none."""
    text = s.payload_keys
    if not text and s.payload_keys_file:
        path = Path(s.payload_keys_file)
        if not path.exists():
            raise MissingKey(f"PAYLOAD_KEYS_FILE {path} does not exist")
        text = path.read_text()
    if not text.strip():
        raise MissingKey("set PAYLOAD_KEYS or PAYLOAD_KEYS_FILE (`id:<base64 of 32 bytes>`, newest "
                         "first): paysaga encrypts every payload it writes to Temporal. "
                         "`make dev` generates one into .data/payload_keys")
    return KeyRing.parse(text)


def search_key(s: Settings, *, or_dev: bool = False) -> bytes:
    """The key of the PaymentUserId HMAC; MissingKey when there is none. `or_dev` (the
    command-line tools): without SEARCH_HASH_KEY, the key `make dev` keeps under DATA_DIR."""
    dev_key = Path(s.data_dir) / "search_hash_key"
    if not s.search_hash_key and or_dev and dev_key.exists():
        return base64.b64decode(dev_key.read_text().strip())
    if not s.search_hash_key:
        raise MissingKey("set SEARCH_HASH_KEY (base64, 32 bytes): the PaymentUserId search "
                         "attribute holds an HMAC of the user id, never the id. `make dev` "
                         "generates one into .data/search_hash_key")
    return base64.b64decode(s.search_hash_key)


class EncryptionCodec(PayloadCodec):
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._ciphers = {kid: AESGCM(key) for kid, key in ring.keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        kid, _ = self.ring.current
        cipher = self._ciphers[kid]
        encoded = []
        for p in payloads:
            nonce = entropy.token_bytes(12)  # public once used: from the pool, no GIL release
            encoded.append(Payload(
                metadata={"encoding": ENCODING, KEY_ID: kid.encode()},
                data=nonce + cipher.encrypt(nonce, p.SerializeToString(), None)))
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for p in payloads:
            if p.metadata.get("encoding", b"") != ENCODING:
                decoded.append(p)  # written before encryption: as it is
                continue
            kid = p.metadata.get(KEY_ID, b"").decode()
            cipher = self._ciphers.get(kid)
            if cipher is None:
                raise ValueError(f"payload encrypted with key {kid!r}, which is not in the key "
                                 "ring")
            decoded.append(Payload.FromString(cipher.decrypt(p.data[:12], p.data[12:], None)))
        return decoded
