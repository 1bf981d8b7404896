"""Canary secrets, the forms they could leak in, and scanners for files, processes and text.

A canary is a random secret placed in a credential. A leak is any of its forms found
where it must not be: the raw text, or standard or URL-safe base64 at any of the three
byte alignments (a secret inside a larger base64 blob, such as a kubeconfig's
client-key-data, encodes differently depending on where it starts).
"""

from __future__ import annotations

import base64
import datetime
import os
import secrets
import string
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID


def _b64_forms(secret: bytes) -> list[bytes]:
    forms: list[bytes] = []
    for align in range(3):
        encoded = base64.b64encode(b"\0" * align + secret)
        # Drop the characters that depend on the bytes before and after the secret.
        head = 4 if align else 0
        core = encoded[head:-4]
        forms += [core, core.replace(b"+", b"-").replace(b"/", b"_")]
    return forms


def forms_of(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, *_b64_forms(raw)]


def _pem_marker(pem: str) -> str:
    """The longest base64 line of a PEM: distinctive, and free of newlines."""
    return max((line for line in pem.splitlines() if "-----" not in line), key=len)


@dataclass(frozen=True)
class Canaries:
    kube_token: str
    client_key_pem: str
    client_cert_pem: str
    s3_access_key_id: str
    s3_secret_access_key: str
    ssh_private_key: str
    become_password: str
    worker_env: str
    """Set in the worker's environment only: its children must not inherit it."""

    @classmethod
    def fresh(cls) -> Canaries:
        alphabet = string.ascii_uppercase + string.digits
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "canary-admin")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        ssh_key = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        return cls(
            kube_token=f"kubetoken-canary-{secrets.token_hex(16)}",
            client_key_pem=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
            client_cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            s3_access_key_id="AKIACANARY" + "".join(secrets.choice(alphabet) for _ in range(10)),
            s3_secret_access_key=f"s3secret-canary-{secrets.token_hex(16)}",
            ssh_private_key=ssh_key.decode(),
            become_password=f"become-canary-{secrets.token_hex(12)}",
            worker_env=f"workerenv-canary-{secrets.token_hex(12)}",
        )

    def credentials(self) -> dict[str, list[bytes]]:
        """Every credential canary (not the worker-env one), by name, with its forms."""
        return {
            "kubeconfig token": forms_of(self.kube_token),
            "kubeconfig client key": forms_of(_pem_marker(self.client_key_pem)),
            "S3 access key id": forms_of(self.s3_access_key_id),
            "S3 secret access key": forms_of(self.s3_secret_access_key),
            "SSH private key": forms_of(_pem_marker(self.ssh_private_key)),
            "become password": forms_of(self.become_password),
        }

    def everything(self) -> dict[str, list[bytes]]:
        return {**self.credentials(), "worker environment": forms_of(self.worker_env)}


def find(data: bytes, needles: dict[str, list[bytes]]) -> list[str]:
    """Names of the canaries found in ``data``."""
    return [name for name, forms in needles.items() if any(f in data for f in forms)]


def scan_text(where: str, text: str | bytes, needles: dict[str, list[bytes]]) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f"{name} in {where}" for name in find(data, needles)]


def _files(roots: Iterable[Path], since: float | None) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
            continue
        for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
            for filename in filenames:
                path = Path(dirpath) / filename
                try:
                    info = path.lstat()
                except OSError:
                    continue
                if not path.is_file() or path.is_symlink() or info.st_size > 256 * 2**20:
                    continue
                if since is not None and max(info.st_mtime, info.st_ctime) < since:
                    continue
                yield path


def scan_files(
    roots: Iterable[Path], needles: dict[str, list[bytes]], *, since: float | None = None
) -> list[str]:
    """Leaks in every regular file under ``roots`` (changed at or after ``since``)."""
    hits: list[str] = []
    for path in _files(roots, since):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        hits += [f"{name} in file {path}" for name in find(data, needles)]
    return hits


@dataclass
class ProcessWatch:
    """Samples every process's argv and environment until stopped.

    ``credentials`` may appear in no process's argv or environment; ``worker_only`` (the
    worker's own environment) may appear only in the environment of ``worker_pid``.
    """

    credentials: dict[str, list[bytes]]
    worker_only: dict[str, list[bytes]]
    interval_s: float = 0.02
    worker_pid: int | None = None
    hits: set[str] = field(default_factory=set)
    samples: int = 0
    processes_seen: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ProcessWatch:
        self._thread = threading.Thread(target=self._run, name="canary-process-watch")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            self.sample(me)
            self._stop.wait(self.interval_s)

    def sample(self, me: int) -> None:
        self.samples += 1
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            pid = int(entry.name)
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            self.processes_seen.add(pid)
            argv = cmdline.replace(b"\0", b" ")[:120].decode(errors="replace")
            label = f"pid {pid} ({argv})"
            for name in find(cmdline, self.credentials | self.worker_only):
                self.hits.add(f"{name} in argv of {label}")
            for name in find(environ, self.credentials):
                self.hits.add(f"{name} in environment of {label}")
            # The worker's pid is known only after it started, so it is also told by argv.
            if pid != self.worker_pid and b"tests.security.canary_worker" not in cmdline:
                for name in find(environ, self.worker_only):
                    self.hits.add(f"{name} in environment of {label}")
