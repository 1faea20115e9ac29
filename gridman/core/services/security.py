"""Password hashing: argon2id (argon2-cffi), never the password itself.

Why argon2id: it is the KDF RFC 9106 and OWASP recommend first; argon2-cffi's default parameters
(RFC 9106's low-memory profile: t=3, 64 MiB, 4 lanes) cost about 0.1 s per hash on an office PC,
where scrypt at the equivalent N=2^17 costs about 0.4 s — four times the wait at every sign-in for
no more resistance. Hashes of an older kind or cost (``scrypt$…`` written before, argon2id with
weaker parameters) still verify, and :func:`needs_rehash` tells the sign-in to store a new hash.

Threading: every function is pure (no shared state but the lazily made dummy hash, which is
immutable once made).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import hash_secret

_HASHER = PasswordHasher()  # RFC 9106 low-memory profile
_dummy_hash: str | None = None


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """An argon2id hash with a random salt (``salt`` is given only by the deterministic sample writer)."""
    if salt is None:
        return _HASHER.hash(password)
    h = _HASHER
    return hash_secret(password.encode(), salt, time_cost=h.time_cost, memory_cost=h.memory_cost,
                       parallelism=h.parallelism, hash_len=h.hash_len, type=Type.ID).decode()


def verify_password(password: str, stored: str) -> bool:
    """Does ``password`` match ``stored`` (argon2id, or a legacy ``scrypt$`` hash)? Never raises."""
    if stored.startswith("$argon2"):
        try:
            return _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    return False


def _verify_scrypt(password: str, stored: str) -> bool:
    """The hashes written before argon2id: ``scrypt$N$r$p$salt$digest``."""
    try:
        _scheme, n_s, r_s, p_s, salt_b64, digest_b64 = stored.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected),
                             maxmem=256 * r * n + 2**20)
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(got, expected)


def needs_rehash(stored: str) -> bool:
    """Is ``stored`` weaker than a new hash would be (another scheme or lower argon2 parameters)?"""
    if not stored.startswith("$argon2"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def spend_verify_time(password: str) -> None:
    """Take as long as checking ``password`` against a real account would (unknown user names,
    disabled and locked accounts), so that the time of the answer tells nothing."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _HASHER.hash(os.urandom(16).hex())
    verify_password(password, _dummy_hash)
