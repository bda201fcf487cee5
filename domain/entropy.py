"""Random bytes for values that are public once used: AES-GCM nonces, ids, request ids. Never
for keys or secrets (those come from `secrets`, as the API keys and webhook secrets do).

They come from the OS's CSPRNG as `os.urandom` gives them, 64 KiB at a time rather than a call
each: `os.urandom` releases the GIL, and in a process whose Temporal SDK threads want the GIL
(the core's, handing results to the event loop) every call waited for it to come back. With one
busy thread beside it, a 12-byte `os.urandom` took 106 us instead of 0.5; the payload codec,
which drew a nonce for each payload, spent 31 us a payload under the bench's load instead of
the 5 it costs alone. Every byte is handed out once; a forked child draws its own.
"""

from __future__ import annotations

import os
import threading

_CHUNK = 64 * 1024


class _Pool:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.buffer = b""
        self.at = 0

    def take(self, n: int) -> bytes:
        with self.lock:
            if self.at + n > len(self.buffer):
                self.buffer, self.at = os.urandom(max(_CHUNK, n)), 0
            taken = self.buffer[self.at:self.at + n]
            self.at += n
            return taken


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL.reset)  # a child must never hand out its parent's bytes


def token_bytes(n: int) -> bytes:
    """`n` random bytes, never handed out before in this process."""
    return _POOL.take(n)


def token_hex(n: int) -> str:
    return token_bytes(n).hex()
