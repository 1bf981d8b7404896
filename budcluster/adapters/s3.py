"""The S3 adapter: boto3 clients for any S3-compatible endpoint, and models stored there."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from budcluster.errors import BudClusterError, PermanentError
from budcluster.transfer.errors import ManifestMismatch, SourceNotFound, SourceUnavailable
from budcluster.transfer.manifest import MANIFEST_NAME, Manifest
from budcluster.transfer.paths import RESERVED_PREFIX, check_relative_path
from budcluster.transfer.source import RangeReader, SourceFile


class S3Error(BudClusterError):
    """Base class of this adapter's errors."""


class S3ConfigError(S3Error, PermanentError):
    """The endpoint or credentials are unusable."""


class S3Unavailable(S3Error, SourceUnavailable):
    """The endpoint did not answer in time (a TemporaryError: retrying may help)."""


class S3NotFound(S3Error, SourceNotFound):
    """The bucket, prefix or object does not exist."""


class S3RequestFailed(S3Error, PermanentError):
    """S3 refused a request for a reason retrying will not fix."""


_CREDENTIAL_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
_MISSING_CODES = {"NoSuchBucket", "NoSuchKey", "404"}
_RETRYABLE_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503"}
_MAX_MANIFEST_BYTES = 64 << 20


def make_s3_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None = None,
    timeout_s: float = 30.0,
) -> Any:
    """A boto3 S3 client with connect/read timeouts and bounded retries."""
    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 3, "mode": "standard"},
        # Path-style addressing works with MinIO, Ceph and moto as well as AWS.
        s3={"addressing_style": "path"},
        # Room for one connection per transfer worker (boto3's default pool is 10).
        max_pool_connections=32,
    )
    try:
        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            config=config,
        )
    except ValueError as exc:
        raise S3ConfigError(f"invalid S3 endpoint '{endpoint_url}': {exc}") from exc


def s3_error(exc: Exception, what: str) -> S3Error:
    """Translate a botocore/urllib3 failure into this adapter's errors (chain it yourself)."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        if code in _CREDENTIAL_CODES:
            return S3ConfigError(
                f"{what}: access refused ({code}); check AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY and BUDCLUSTER_S3_ENDPOINT_URL"
            )
        if code in _MISSING_CODES:
            return S3NotFound(f"{what}: not found ({code}: {message})")
        if code in _RETRYABLE_CODES:
            return S3Unavailable(f"{what}: the endpoint is overloaded ({code}); retry later")
        return S3RequestFailed(f"{what}: S3 refused the request ({code}: {message})")
    if isinstance(
        exc,
        (
            BotoConnectionError,
            HTTPClientError,
            ReadTimeoutError,
            IncompleteReadError,
            ResponseStreamingError,
            Urllib3HTTPError,
            OSError,
        ),
    ):
        return S3Unavailable(f"{what}: the endpoint did not answer ({exc}); retry resumes")
    if isinstance(exc, BotoCoreError):
        return S3RequestFailed(f"{what}: {exc}")
    return S3RequestFailed(f"{what}: unexpected {type(exc).__name__}: {exc}")


class _BodyReader:
    """``readinto`` over a botocore StreamingBody, with its errors translated."""

    def __init__(self, body: Any, what: str) -> None:
        self._body = body
        self._what = what

    def readinto(self, buffer: memoryview, /) -> int:
        try:
            data: bytes = self._body.read(len(buffer))
        except Exception as exc:
            raise s3_error(exc, f"{self._what}: reading the object") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()


class _EmptyReader:
    def readinto(self, buffer: memoryview, /) -> int:
        return 0

    def close(self) -> None:
        return None


class S3ModelSource:
    """A model stored as objects under ``s3://bucket/prefix/`` (one object per file).

    Keys are checked like any other relative path: ``..``, an absolute remainder or a
    reserved name is refused with UnsafeModelPath. Reads are pinned to the ETag seen in
    the listing (If-Match), so an object replaced mid-transfer fails loudly instead of
    splicing two versions together.
    """

    def __init__(self, client: Any, *, bucket: str, prefix: str) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._key_prefix = f"{self.prefix}/" if self.prefix else ""
        self._manifest_key: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, rel: str) -> str:
        return self._key_prefix + rel

    def list_files(self) -> list[SourceFile]:
        files: list[SourceFile] = []
        self._manifest_key = None
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key_prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key: str = item["Key"]
                    rel = key[len(self._key_prefix) :]
                    if key.endswith("/"):
                        continue  # a "directory" marker object, not a file
                    if rel.rsplit("/", 1)[-1].startswith(RESERVED_PREFIX):
                        if rel == MANIFEST_NAME:
                            self._manifest_key = key
                        continue
                    path = check_relative_path(rel, origin=f"s3://{self.bucket}/{key}")
                    etag = str(item.get("ETag", "")).strip('"')
                    files.append(SourceFile(path=path, size=int(item["Size"]), version=etag))
        except ClientError as exc:
            raise s3_error(exc, f"listing {self.uri}") from exc
        except (BotoCoreError, Urllib3HTTPError, OSError) as exc:
            raise s3_error(exc, f"listing {self.uri}") from exc
        paths = [f.path for f in files]
        if len(set(paths)) != len(paths):
            raise ManifestMismatch(
                f"{self.uri}: two keys map to the same file path (e.g. 'a//b' and 'a/b'); rename one"
            )
        return sorted(files, key=lambda f: f.path)

    def expected_manifest(self) -> Manifest | None:
        if self._manifest_key is None:
            return None
        what = f"s3://{self.bucket}/{self._manifest_key}"
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._manifest_key)
            if int(response.get("ContentLength", 0)) > _MAX_MANIFEST_BYTES:
                raise S3RequestFailed(f"{what}: larger than {_MAX_MANIFEST_BYTES} bytes")
            text = response["Body"].read().decode()
        except S3Error:
            raise
        except Exception as exc:
            raise s3_error(exc, what) from exc
        return Manifest.from_json(text, origin=what)

    def open_range(self, file: SourceFile, offset: int) -> RangeReader:
        if offset >= file.size:
            return _EmptyReader()
        key = self._key(file.path)
        what = f"s3://{self.bucket}/{key}"
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if file.version:
            request["IfMatch"] = f'"{file.version}"'
        if offset:
            request["Range"] = f"bytes={offset}-"
        try:
            response = self._client.get_object(**request)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"PreconditionFailed", "412"}:
                raise ManifestMismatch(
                    f"{what} changed after it was listed (ETag is no longer {file.version}); "
                    "rerun the transfer once the upload is finished"
                ) from exc
            raise s3_error(exc, what) from exc
        except Exception as exc:
            raise s3_error(exc, what) from exc
        return _BodyReader(response["Body"], what)


# --- Terraform state buckets ------------------------------------------------------------------


def aws_account_id(
    *,
    region: str,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None = None,
    timeout_s: float = 30.0,
) -> str:
    """The AWS account these keys belong to (STS GetCallerIdentity).

    It lives here because it only serves S3: naming an account's state bucket and
    checking that a bucket of that name is the account's own.
    """
    config = Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 3})
    try:
        sts = boto3.client(
            "sts",
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            config=config,
        )
        return str(sts.get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(exc, "identify the AWS account for its state bucket") from exc


def default_state_bucket(account_id: str, region: str) -> str:
    """``bud-tfstate-<account id>-<region>``: bucket names are global, the account id
    keeps one account's name from clashing with another's."""
    return f"bud-tfstate-{account_id}-{region}"


def ensure_state_bucket(
    client: Any,
    bucket: str,
    region: str,
    *,
    expected_owner: str | None = None,
    harden_existing: bool = False,
) -> bool:
    """Create ``bucket`` for Terraform state unless it exists; True when it was created.

    A created bucket gets versioning (an older state can be restored), default encryption
    and every form of public access blocked; with ``harden_existing`` an existing one gets
    them again (a run that died after creating it may have left them out).
    ``expected_owner`` (an account id) refuses a bucket of that name owned by someone else.
    """
    owner = {"ExpectedBucketOwner": expected_owner} if expected_owner else {}
    created = False
    try:
        client.head_bucket(Bucket=bucket, **owner)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in {"403", "AccessDenied"} and expected_owner:
            raise S3ConfigError(
                f"state bucket {bucket} exists but is not account {expected_owner}'s; name "
                "your own bucket in the form's state.bucket"
            ) from exc
        if code not in _MISSING_CODES:
            raise s3_error(exc, f"check state bucket {bucket}") from exc
        created = True
    except BotoCoreError as exc:
        raise s3_error(exc, f"check state bucket {bucket}") from exc
    if not (created or harden_existing):
        return False
    try:
        if created and region == "us-east-1":  # the one region refusing a LocationConstraint
            client.create_bucket(Bucket=bucket)
        elif created:
            client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
        client.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}, **owner
        )
        client.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            **owner,
        )
        client.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
            **owner,
        )
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(exc, f"set up state bucket {bucket}") from exc
    return created
