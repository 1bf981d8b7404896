"""What a pod gets from Kubernetes to reach its API server, for code run outside a cluster.

A pod's ``config.load_incluster_config()`` reads ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the
service-account folder (``token``, ``ca.crt``, ``namespace``) and only speaks HTTPS. Here the
API server is the emulator serving TLS with a certificate from a throwaway CA, and the folder
is mounted where the kubelet mounts it.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Where a test mounts that folder: /var/run is a symlink to /run in Debian images, and
# buildah's chroot resolves a mount target's symlinks on the HOST, so mounting at /var/run/...
# would create the folder on the host. The client's /var/run/... path resolves to it in the image.
SERVICE_ACCOUNT_MOUNT = "/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class ServerTls:
    ca_pem: bytes
    context: ssl.SSLContext


def server_tls(directory: Path, host: str = "127.0.0.1") -> ServerTls:
    """A CA and a server certificate for ``host`` (an IP SAN), as an SSL context for the server."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "budcluster-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / "server.crt"
    key_path = directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return ServerTls(ca.public_bytes(serialization.Encoding.PEM), context)


def service_account_dir(directory: Path, *, token: str, ca_pem: bytes, namespace: str) -> Path:
    """The folder the kubelet mounts at SERVICE_ACCOUNT_DIR, readable by any UID like the
    projected volume is (the image runs as 10001)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for name, data in (
        ("token", token.encode()),
        ("ca.crt", ca_pem),
        ("namespace", namespace.encode()),
    ):
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o644)
    return directory


def in_cluster_env(port: int, host: str = "127.0.0.1") -> dict[str, str]:
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": str(port)}
