"""A private CA and a localhost server certificate for the simulator's HTTPS.

`ensure_certs(directory)` makes (once) a self-signed CA and a server certificate signed by it
for `localhost`, `127.0.0.1` and `::1`. Clients trust the simulator by trusting the CA file:
`SSL_CERT_FILE` / `REQUESTS_CA_BUNDLE` (Python), `GIT_SSL_CAINFO` (git and git-lfs),
`curl --cacert`. The CA's private key is never written anywhere: nothing else can be issued
under it. The files are reused while they are valid and consistent; several processes may
call `ensure_certs` on the same directory at once (a lock file serialises generation and every
file is written to a temporary name and renamed into place).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import ssl
import tempfile
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "ghvault GitHub simulator CA"
CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server-key.pem"
DNS_NAMES = ("localhost",)
IP_NAMES = ("127.0.0.1", "::1")
CA_DAYS = 3650
SERVER_DAYS = 3 * 365
RENEW_BEFORE = dt.timedelta(days=30)


def ensure_certs(directory: Path) -> tuple[Path, Path, Path]:
    """(ca_cert_pem, server_cert_pem, server_key_pem) in `directory`, made if missing/invalid."""
    directory = Path(directory)
    paths = (directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)
    if _valid(*paths):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory / ".lock"):
        if not _valid(*paths):  # another process may have made them while we waited
            _generate(*paths)
    return paths


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2+, ALPN http/1.1) for the certificate and key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# --------------------------------------------------------------------------------------------


@contextmanager
def _locked(path: Path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _valid(ca_path: Path, cert_path: Path, key_path: Path) -> bool:
    """The three files exist, belong together, cover our names and are not about to expire."""
    try:
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return False
    horizon = dt.datetime.now(dt.UTC) + RENEW_BEFORE
    try:
        if ca.not_valid_after_utc < horizon or cert.not_valid_after_utc < horizon:
            return False
        if not ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, InvalidSignature, ValueError, TypeError):
        return False
    if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
        return False
    if not set(DNS_NAMES) <= set(san.get_values_for_type(x509.DNSName)):
        return False
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    if not {str(ipaddress.ip_address(ip)) for ip in IP_NAMES} <= ips:
        return False
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return key.public_key().public_bytes(enc, pub) == cert.public_key().public_bytes(enc, pub)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _generate(ca_path: Path, cert_path: Path, key_path: Path) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
                            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ghvault tests")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in DNS_NAMES]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in IP_NAMES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    # Key first, CA last: a reader that sees the new CA sees a matching certificate and key
    # (readers that race with a regeneration re-check under the lock anyway).
    _write_atomic(key_path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()), 0o600)
    _write_atomic(cert_path, cert.public_bytes(pem), 0o644)
    _write_atomic(ca_path, ca.public_bytes(pem), 0o644)
