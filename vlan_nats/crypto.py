"""The AEAD that sealing uses: AES-256-GCM from ``cryptography``.

core/seal.py is pure and takes the AEAD as a parameter; this is the one
place that imports the library (and with it its cffi backend).  Why
AES-GCM and not ChaCha20-Poly1305: docs/security.md (faster on CPUs with
AES-NI, which is every server we target).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .core.seal import Aead


def aes_gcm(key: bytes) -> Aead:
    return AESGCM(key)
