"""Verify AWS Signature Version 4 on requests, with botocore's own signer.

The server knows one access key and its secret. A request is accepted when botocore, signing the
request as received (method, path, query, the headers the client listed, the body) with that
secret and the client's timestamp, scope and service, arrives at the same signature. Errors are
the ones Lambda answers with (HTTP 403), so botocore and the AWS CLI report them by name.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from durably.core.engine.errors import ServiceError

MAX_SKEW = dt.timedelta(minutes=15)
"""How far a request's ``X-Amz-Date`` may be from the server's clock (AWS's own limit)."""
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)/(?P<service>[^/\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})")


class MissingAuthenticationTokenException(ServiceError):
    code = "MissingAuthenticationTokenException"
    status = 403


class IncompleteSignatureException(ServiceError):
    code = "IncompleteSignatureException"
    status = 403


class UnrecognizedClientException(ServiceError):
    code = "UnrecognizedClientException"
    status = 403


class InvalidSignatureException(ServiceError):
    code = "InvalidSignatureException"
    status = 403


@dataclass(frozen=True)
class AccessKey:
    """The credentials a server accepts: an access key id and its secret."""

    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"AccessKey({self.access_key_id!r}, secret_access_key=<hidden>)"


def verify(key: AccessKey, method: str, url: str, headers: dict[str, str], body: bytes,
           now: dt.datetime | None = None) -> None:
    """Raise a 403 error unless the request is signed with ``key``.

    ``url`` is the request's URL as sent (scheme, host, raw path and raw query); ``headers`` are
    keyed in lower case.
    """
    authorization = headers.get("authorization")
    if not authorization:
        raise MissingAuthenticationTokenException(
            "this server needs requests signed with AWS Signature Version 4 (its access key and secret)")
    found = _AUTHORIZATION.fullmatch(authorization.strip())
    if found is None:
        raise IncompleteSignatureException("the Authorization header is not an AWS4-HMAC-SHA256 signature")
    if not hmac.compare_digest(found["key"], key.access_key_id):
        raise UnrecognizedClientException("the access key id is not the one this server was started with")
    stamp = headers.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise IncompleteSignatureException("X-Amz-Date is missing or not of the form YYYYMMDDTHHMMSSZ") from None
    if stamp[:8] != found["date"]:
        raise InvalidSignatureException("the date of the credential scope is not the date of X-Amz-Date")
    if abs((now or dt.datetime.now(dt.UTC)) - signed_at) > MAX_SKEW:
        raise InvalidSignatureException(
            f"the request was signed at {stamp}, more than 15 minutes from this server's clock")
    signed = found["signed"].split(";")
    if "host" not in signed or any(name not in headers for name in signed):
        raise IncompleteSignatureException("the signed headers must include host and be present in the request")
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in signed})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), found["service"], found["region"])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, found["signature"]):
        raise InvalidSignatureException(
            "the request signature does not match: check the secret access key and the signing method")
