"""S3 as a source of references: listing by object versions, lookups and reads that pin a version.

A bucket's listing already says what identifies each object, 1,000 objects per request, so
logging a prefix of 10,000 objects costs about ten requests and no HEAD at all. On a bucket with
versioning (``GetBucketVersioning`` says so) ``ListObjectVersions`` gives the ETag, size and
VersionId of the latest version of each object; on one without, ``ListObjectsV2`` gives the ETag
and size (there is no version to pin, and this call lists only current objects, where listing
versions would page through every old one too). Where the versioning may not be read, versions
are listed, and where they may not be listed (no ``s3:ListBucketVersions`` permission, or an
S3-compatible server without the call) ``ListObjectsV2`` is used. A prefix is listed one level
deep first, then each sub-prefix concurrently.

A read is one GET: of the recorded VersionId when there is one (those bytes never change), else
``If-Match`` the recorded ETag, and the answer's own ETag, VersionId and length are checked
before a byte is kept.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Mapping
from typing import Any, BinaryIO

from plait.storage.sources import HEAD_CONCURRENCY, Check, ObjectInfo, Source, TooManyObjects, endpoint_of, normal_etag

#: Objects per listing request (the S3 maximum).
PAGE = 1000
#: What a listing reports: every version, the latest version of each object, or current objects only.
ALL, LATEST, NONE = "all", "latest", "none"
#: Sub-prefixes listed at once. A listing page is heavy for the server (moto spends ~1 ms per
#: object rendering it): a few at a time keep the pipe full without queueing behind each other.
LIST_CONCURRENCY = 4


class S3Source(Source):
    """Objects in S3 (or an S3-compatible server), through s3fs.

    :param scheme: ``s3`` or ``s3a``.
    :param options: s3fs storage options (credentials, ``client_kwargs.endpoint_url``, …).
    """

    def __init__(self, scheme: str, options: Mapping[str, Any]) -> None:
        import fsspec

        options = dict(options)
        retries = options.pop("retries", None)  # s3fs takes it as an attribute, not an argument
        self.scheme = scheme
        self.fs = fsspec.filesystem("s3", **options)
        if retries is not None:
            self.fs.retries = max(1, int(retries))
        self.endpoint = endpoint_of(options)

    # -- plumbing -------------------------------------------------------------------------------

    def _split(self, uri: str) -> tuple[str, str]:
        bucket, _, key = uri.split("://", 1)[1].partition("/")
        return bucket, key

    def _uri(self, bucket: str, key: str) -> str:
        return f"{self.scheme}://{bucket}/{key}"

    def _run(self, coro: Any) -> Any:
        from fsspec.asyn import sync

        async def run() -> Any:
            return await coro

        return sync(self.fs.loop, run)

    async def _call(self, method: str, **kwargs: Any) -> Any:
        return await self.fs._call_s3(method, **kwargs)  # s3fs's own retries and error translation

    def _info(self, bucket: str, item: Mapping[str, Any]) -> ObjectInfo:
        version = item.get("VersionId")
        return ObjectInfo(self._uri(bucket, item["Key"]), int(item.get("Size", item.get("ContentLength", 0))),
                          normal_etag(item.get("ETag")), None if version in (None, "", "null") else str(version),
                          latest=bool(item.get("IsLatest", True)))

    # -- listing --------------------------------------------------------------------------------

    def _list(self, uri: str, max_objects: int) -> list[ObjectInfo]:
        bucket, key = self._split(uri)
        if key and not key.endswith("/"):
            one = self._head(uri, None)
            if one is not None:
                return [one]
            key += "/"
        found = [self._info(bucket, i) for i in self._run(self._logged(bucket, key, max_objects))]
        if not found:  # S3 has no empty folders: nothing is there
            raise FileNotFoundError(uri)
        return found

    def listing(self, prefix: str, *, versions: bool, limit: int) -> list[ObjectInfo] | None:
        """Return every object (or object version) below ``prefix``, or ``None`` past ``limit``."""
        bucket, key = self._split(prefix)
        try:
            items = self._run(self._tree(bucket, key, limit, ALL if versions else NONE))
        except TooManyObjects:
            return None
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self.error(exc, prefix) from None
        return [self._info(bucket, i) for i in items]

    async def _logged(self, bucket: str, prefix: str, limit: int) -> list[dict[str, Any]]:
        """List a prefix being logged: with the VersionId of each object where the bucket keeps versions."""
        try:
            answer = await self._call("get_bucket_versioning", Bucket=bucket)
            versioned = answer.get("Status") in ("Enabled", "Suspended")
        except FileNotFoundError:
            raise
        except (PermissionError, NotImplementedError, OSError):
            versioned = True  # unknown: list versions (and fall back to plain listing if that is refused)
        return await self._tree(bucket, prefix, limit, LATEST if versioned else NONE)

    async def _tree(self, bucket: str, prefix: str, limit: int, versions: str) -> list[dict[str, Any]]:
        """List a prefix: its first level, then each sub-prefix concurrently.

        :param versions: :data:`ALL` versions, the :data:`LATEST` version of each object (with its
            VersionId), or :data:`NONE` (current objects, no VersionId).
        """
        counter = [0]
        method = "list_objects_v2" if versions == NONE else "list_object_versions"
        every = versions == ALL
        try:
            items, subs = await self._pages(bucket, prefix, "/", method, limit, counter, every)
        except (PermissionError, NotImplementedError, OSError) as exc:
            if versions != LATEST or isinstance(exc, FileNotFoundError):
                raise
            method = "list_objects_v2"  # versions may not be listed here: the same without VersionId
            counter[0] = 0
            items, subs = await self._pages(bucket, prefix, "/", method, limit, counter, every)
        gate = asyncio.Semaphore(LIST_CONCURRENCY)

        async def below(sub: str) -> list[dict[str, Any]]:
            async with gate:
                return (await self._pages(bucket, sub, None, method, limit, counter, every))[0]

        for found in await asyncio.gather(*(below(s) for s in subs)):
            items.extend(found)
        return items

    async def _pages(self, bucket: str, prefix: str, delimiter: str | None, method: str, limit: int,
                     counter: list[int], every_version: bool) -> tuple[list[dict[str, Any]], list[str]]:
        """Page through one listing; return its objects and (with a delimiter) its sub-prefixes."""
        items: list[dict[str, Any]] = []
        subs: list[str] = []
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": PAGE}
        if delimiter:
            params["Delimiter"] = delimiter
        while True:
            page = await self._call(method, **params)
            found = page.get("Versions" if method == "list_object_versions" else "Contents") or []
            kept = [i for i in found if every_version or i.get("IsLatest", True)]
            items.extend(kept)
            subs.extend(p["Prefix"] for p in page.get("CommonPrefixes") or [])
            counter[0] += len(kept)
            if counter[0] > limit:
                raise TooManyObjects
            if not page.get("IsTruncated"):
                return items, subs
            if method == "list_object_versions":
                params.update(KeyMarker=page.get("NextKeyMarker", ""), VersionIdMarker=page.get("NextVersionIdMarker", ""))
            else:
                params["ContinuationToken"] = page["NextContinuationToken"]

    # -- lookups and reads ----------------------------------------------------------------------

    def _head(self, uri: str, version_id: str | None) -> ObjectInfo | None:
        return self._run(self._head_async(uri, version_id))

    async def _head_async(self, uri: str, version_id: str | None) -> ObjectInfo | None:
        bucket, key = self._split(uri)
        try:
            got = await self._call("head_object", Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if version_id and exc.errno == errno.EINVAL:  # a version id the bucket does not know
                return None
            raise
        return self._info(bucket, {**got, "Key": key})

    def heads(self, items: list[tuple[str, str | None]]) -> list[ObjectInfo | None | Any]:
        """Look many objects up concurrently on s3fs's event loop; a failure is returned in its place."""
        gate = asyncio.Semaphore(HEAD_CONCURRENCY)

        async def one(uri: str, version_id: str | None) -> Any:
            async with gate:
                try:
                    return await self._head_async(uri, version_id)
                except Exception as exc:  # reported per object by the caller
                    return self.error(exc, uri)

        async def every() -> list[Any]:
            return list(await asyncio.gather(*(one(u, v) for u, v in items)))

        return self._run(every())

    def _read(self, uri: str, out: BinaryIO, check: Check, version_id: str | None, etag: str | None) -> ObjectInfo:
        return self._run(self._get(uri, out, check, version_id, etag))

    async def _get(self, uri: str, out: BinaryIO, check: Check, version_id: str | None, etag: str | None) -> ObjectInfo:
        bucket, key = self._split(uri)
        condition = {"VersionId": version_id} if version_id else ({"IfMatch": f'"{etag}"'} if etag else {})
        try:
            answer = await self._call("get_object", Bucket=bucket, Key=key, **condition)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not condition:
                raise
            now = await self._head_async(uri, None)  # the condition failed: say what changed
            if now is None:
                raise FileNotFoundError(uri) from None
            check(now)
            raise
        info = self._info(bucket, {**answer, "Key": key})
        body = answer["Body"]
        try:
            check(info)
            while chunk := await body.read(1 << 20):
                out.write(chunk)
        finally:
            body.close()
        return info
