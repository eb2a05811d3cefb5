"""Objects in an S3-compatible store (``--files s3://bucket/prefix``): a :class:`BlobStore`.

The object of SHA-256 ``h`` is ``<prefix>/<h[:2]>/<h>``. Credentials and region come from
boto3's usual chain (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``~/.aws``, an instance role,
``AWS_DEFAULT_REGION``); the endpoint from ``files_endpoint``, else ``AWS_ENDPOINT_URL``, else
AWS. This module imports boto3, so it is imported only when an S3 store is chosen.

An upload streams through: it is hashed as it arrives, and once it passes
:data:`PART_BYTES` it goes up as a multipart upload, one part at a time (so at most one part
is held in memory). An upload whose name is known is written to its final key and completed
only once the hash checks out (aborted otherwise: nothing half-made is ever visible); an
upload whose hash is learned at its end (a run file) goes to ``<prefix>/tmp/<random>`` and is
then copied to its name inside the store. An object already stored (HEAD first) is not
uploaded again. Downloads are streamed from the store through the server.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from starlette.concurrency import run_in_threadpool

from ._blob_store import Stored, check_sha256, drain, expect
from .errors import NotFound, StartupError

PART_BYTES = 8 << 20  # the multipart threshold and part size (S3's smallest part is 5 MiB)
_READ_BYTES = 1 << 20


def parse_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix``; the prefix ends in ``/`` unless empty."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise StartupError(
            f"--files {url!r} names no bucket; give s3://bucket or s3://bucket/prefix"
        )
    prefix = prefix.strip("/")
    return bucket, prefix + "/" if prefix else ""


def _missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class _Upload:
    """One multipart upload to ``key``, begun with its first part."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.completed = False

    def part(self, data: bytes) -> None:
        if self.upload_id is None:
            made = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)
            self.upload_id = str(made["UploadId"])
        number = len(self.parts) + 1
        sent = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self.parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def complete(self) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )
        self.completed = True

    def abort(self) -> None:
        """Drop the parts sent (best effort: the failure that led here is the one to tell)."""
        if self.upload_id is None or self.completed:
            return
        with contextlib.suppress(BotoCoreError, ClientError):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )


class S3BlobStore:
    """Objects in ``bucket`` under ``prefix`` (see the module docstring)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.where = f"s3://{bucket}/{prefix}"

    @classmethod
    def open(cls, url: str, endpoint: str | None) -> S3BlobStore:
        """The store at ``url``; :class:`StartupError` if its bucket cannot be reached."""
        bucket, prefix = parse_url(url)
        config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=64)
        try:
            client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
            client.head_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StartupError(
                f"--files {url}: cannot reach bucket {bucket!r} ({exc}); create the bucket, "
                "and check the AWS credentials, region and endpoint (AWS_ENDPOINT_URL or "
                "--files-endpoint)"
            ) from exc
        return cls(client, bucket, prefix)

    def key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256[:2]}/{check_sha256(sha256)}"

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return head

    def exists(self, sha256: str) -> bool:
        return self._head(self.key(sha256)) is not None

    def size(self, sha256: str) -> int:
        head = self._head(self.key(sha256))
        if head is None:
            raise NotFound(f"blob {sha256} is not stored on this server")
        return int(head["ContentLength"])

    def read(self, sha256: str) -> Iterator[bytes]:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as exc:
            if _missing(exc):
                raise NotFound(f"blob {sha256} is not stored on this server") from None
            raise
        return _chunks(got["Body"])

    async def put(self, chunks: AsyncIterator[bytes], sha256: str | None = None) -> Stored:
        """Store the stream (as ``sha256`` if given, checked); returns its name and size."""
        if sha256 is not None and await run_in_threadpool(self.exists, check_sha256(sha256)):
            digest, size, _rest = await drain(chunks, PART_BYTES, None)  # verify, send nothing
            return Stored(expect(sha256, digest, size), size)
        key = self.key(sha256) if sha256 else f"{self.prefix}tmp/{secrets.token_hex(16)}"
        upload = _Upload(self.client, self.bucket, key)
        try:
            digest, size, rest = await drain(chunks, PART_BYTES, upload.part)
            found = expect(sha256, digest, size)
            await run_in_threadpool(self._finish, upload, rest, found)
        except BaseException:
            await run_in_threadpool(upload.abort)
            raise
        return Stored(found, size)

    def _finish(self, upload: _Upload, rest: bytes, sha256: str) -> None:
        """Put a small object in one request, or send the last part and complete; an upload
        to a temporary key is then copied to its name (unless that is stored already)."""
        final = self.key(sha256)
        if upload.upload_id is None:
            if self._head(final) is None:
                self.client.put_object(Bucket=self.bucket, Key=final, Body=rest)
            return
        if rest:
            upload.part(rest)
        upload.complete()
        if upload.key == final:
            return
        try:
            if self._head(final) is None:
                source = {"Bucket": self.bucket, "Key": upload.key}
                self.client.copy_object(Bucket=self.bucket, Key=final, CopySource=source)
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=upload.key)


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(_READ_BYTES)
    finally:
        body.close()
