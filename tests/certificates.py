"""Self-signed certificates made at test time with the openssl command (scripts/test.sh
installs it), for the wss:// tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Certificate", "make_certificate"]


@dataclass(frozen=True)
class Certificate:
    """A certificate file and its private key file (PEM)."""

    cert: Path
    key: Path


def make_certificate(directory: Path, name: str, subject_alt_names: str) -> Certificate:
    """Make a self-signed certificate (P-256 key, valid one day) with the given SAN list."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName={subject_alt_names}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Certificate(cert, key)
