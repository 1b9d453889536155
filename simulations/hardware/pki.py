"""Certificates of the virtual PLCs: the server's own, created on first start, and the client trust list.

Like a real PLC, the server creates a self-signed application certificate the first
time it starts with security enabled and keeps it (`<pki_dir>/own/`), so that clients
that trusted it once keep trusting it. Client certificates are accepted when found in
the trust folder, or issued by a certificate found there; the folder is re-read when
it changes, so an administrator can trust a client while the line runs.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CertificatePair:
    certificate: Path  # DER
    private_key: Path  # PEM, readable by its owner only


def create_certificate(
    certificate: Path,
    private_key: Path,
    application_uri: str,
    *,
    common_name: str,
    server: bool,
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
    days: int = 365,
) -> CertificatePair:
    """Write a self-signed OPC UA application certificate (DER) and its key (PEM)."""
    key = cert_gen.generate_private_key()
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    usage = (
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        if server
        else [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    cert = cert_gen.generate_self_signed_app_certificate(
        key, common_name, {"organizationName": "fabbrica"}, alt_names, extended=usage, days=days
    )
    certificate.parent.mkdir(parents=True, exist_ok=True)
    private_key.parent.mkdir(parents=True, exist_ok=True)
    certificate.write_bytes(cert.public_bytes(Encoding.DER))
    descriptor = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(cert_gen.dump_private_key_as_pem(key))
    return CertificatePair(certificate, private_key)


def server_certificate(pki_dir: Path, application_uri: str) -> CertificatePair:
    """The PLC's own certificate in `pki_dir/own`, created if missing, expired or for another URI.

    Several PLCs starting at once with the same `pki_dir` agree on one certificate: the
    check-and-create runs under a lock file.
    """
    own = pki_dir / "own"
    own.mkdir(parents=True, exist_ok=True)
    with open(own / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _server_certificate(own, application_uri)


def _server_certificate(own: Path, application_uri: str) -> CertificatePair:
    pair = CertificatePair(own / "server_cert.der", own / "server_key.pem")
    if pair.certificate.is_file() and pair.private_key.is_file():
        try:
            cert = x509.load_der_x509_certificate(pair.certificate.read_bytes())
            uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            valid = cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(
                days=1
            )
            if valid and application_uri in uris.get_values_for_type(x509.UniformResourceIdentifier):
                return pair
        except (ValueError, x509.ExtensionNotFound):
            pass
        logger.warning(
            "server certificate %s is invalid, expired or for another URI: renewing", pair.certificate
        )
    hosts = ("localhost", "127.0.0.1", socket.gethostname())
    logger.info("creating the server certificate %s", pair.certificate)
    return create_certificate(
        pair.certificate,
        pair.private_key,
        application_uri,
        common_name="fabbrica simulated PLC",
        server=True,
        hosts=hosts,
        days=5 * 365,
    )


def load_certificates(folder: Path) -> list[x509.Certificate]:
    """Every DER or PEM certificate in `folder` (unreadable files are logged and skipped)."""
    certificates = []
    for path in sorted(folder.glob("*")):
        if path.suffix.lower() not in (".der", ".pem", ".crt", ".cer"):
            continue
        data = path.read_bytes()
        try:
            if b"-----BEGIN CERTIFICATE-----" in data:
                certificates.extend(x509.load_pem_x509_certificates(data))
            else:
                certificates.append(x509.load_der_x509_certificate(data))
        except ValueError as exc:
            logger.warning("cannot read trusted certificate %s: %s", path, exc)
    return certificates


class TrustList:
    """The client certificates a PLC accepts: asyncua calls it when a session is created."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stamp: tuple[int, ...] | None = None
        self._trusted: list[x509.Certificate] = []
        self.refused = 0

    def _reload(self) -> None:
        try:
            entries = list(os.scandir(self.folder))
            stamp = (self.folder.stat().st_mtime_ns, *sorted(e.stat().st_mtime_ns for e in entries))
        except FileNotFoundError:
            stamp = ()
        if stamp != self._stamp:
            self._stamp = stamp
            self._trusted = load_certificates(self.folder) if stamp else []

    def trusts(self, certificate: x509.Certificate) -> bool:
        self._reload()
        now = datetime.datetime.now(datetime.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            return False
        for trusted in self._trusted:
            if trusted == certificate:
                return True
            if trusted.subject == certificate.issuer:
                try:
                    certificate.verify_directly_issued_by(trusted)
                    return True
                except (ValueError, TypeError, InvalidSignature):
                    continue
        return False

    async def __call__(self, certificate: x509.Certificate, application: ua.ApplicationDescription) -> None:
        if not self.trusts(certificate):
            self.refused += 1
            subject = certificate.subject.rfc4514_string()
            logger.warning(
                "refused the untrusted client certificate %s (%s)", subject, application.ApplicationUri
            )
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)
