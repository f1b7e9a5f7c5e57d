"""The team's remote tier: objects and result records on object storage, shared by
everyone who runs a spec — S3, Google Cloud Storage, Azure Blob Storage, S3-compatible
services (Alibaba OSS, MinIO, Cloudflare R2) through their endpoint, or a directory
(`file:///path`). The only module that imports obstore.

Layout under the URL's prefix, with the key scheme in the path so that keys of another
scheme never meet::

    v1/objects/ab/cdef…          outputs, by the sha256 of their bytes
    v1/results/ab/<key>.json     result records (JSON), by task key
    v1/claims/<key>/…            who is generating a key (`wanflow.store.claims`)
    v1/clock/<token>             written and read back to learn the store's own time
    v1/probe/<token>             written twice at start-up: does the store refuse it?

Everything read from a remote is untrusted input: a record is checked like a spec (shape,
types, digests, its key against its path and against the hash of its own key material, the
key scheme); an object is hashed as it is downloaded and installed only if its digest is
the one asked for. Nothing is ever executed or unpickled.

Credentials come from each cloud's own chain (environment variables, web identity, instance
metadata, credential files named by the environment), read by obstore itself: the one
place below the command line that reads the environment.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Awaitable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import parse_qs, urlsplit

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotSupportedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)

from ..errors import ConfigError, RemoteError
from ..plan.keys import KEY_SCHEME, key_of
from .actions import Result
from .fs import CHUNK, StrPath, unlink_quiet
from .objects import ObjectStore, check_digest

if TYPE_CHECKING:
    from obstore import GetOptions, GetResult, ObjectMeta
    from obstore.store import ObjectStore as Bucket  # S3, GCS, Azure or a local folder

T = TypeVar("T")

SCHEMES = ("s3", "gs", "az", "file")
ROOT = f"v{KEY_SCHEME}"
RECORD_LIMIT = 1 << 20       # bytes: a result record is a few KiB; refuse anything huge
LOOKUPS = 32                 # result records read at once
TRANSFER_ATTEMPTS = 4        # a download resumes (by range) this many times at most
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_TASK = re.compile(r"(asset|gen|frame|scene|film):[^\s]{1,256}\Z")
_QUERY = ("endpoint", "region")

# What a record's provenance may hold, and of what type (None is always allowed).
_NUMBER = (int, float)
_META: dict[str, tuple[type, ...]] = {
    "material": (dict,), "kind": (str,), "source": (str,), "backend": (str,),
    "model": (str,), "task_id": (str,), "request_id": (str,), "actual_prompt": (str,),
    "currency": (str,), "billed_seconds": _NUMBER, "cost": _NUMBER, "duration": _NUMBER,
    "width": (int,), "height": (int,), "usage": (dict,),
}
_RECORD_FIELDS = {"scheme", "key", "task", "digest", "size", "meta", "created"}


class CorruptObject(Exception):
    """A remote object whose bytes do not hash to its name."""


class RefusedRecord(ValueError):
    """A remote result record that is not well-formed: treated as absent."""


# -- result records as JSON -------------------------------------------------------------

def encode_record(result: Result) -> bytes:
    return json.dumps({"scheme": KEY_SCHEME, "key": result.key, "task": result.task,
                       "digest": result.digest, "size": result.size, "meta": result.meta,
                       "created": result.created}, sort_keys=True, ensure_ascii=False,
                      allow_nan=False, default=str).encode("utf-8")


def decode_record(data: bytes, key: str) -> Result:
    """The record stored for `key`, checked like input; RefusedRecord says what is wrong."""
    if len(data) > RECORD_LIMIT:
        raise RefusedRecord("larger than 1 MiB")
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant,
                           object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise RefusedRecord(f"not JSON ({type(exc).__name__})") from None
    except ValueError as exc:
        raise RefusedRecord(f"not JSON ({exc})") from None
    if not isinstance(value, dict) or set(value) != _RECORD_FIELDS:
        raise RefusedRecord("not a result record (fields: "
                         f"{', '.join(sorted(_RECORD_FIELDS))})")
    if value["scheme"] != KEY_SCHEME or isinstance(value["scheme"], bool):
        raise RefusedRecord(f"key scheme {value['scheme']!r}, not {KEY_SCHEME}")
    if value["key"] != key:
        raise RefusedRecord("its key is not the one it is filed under")
    task, digest, size = value["task"], value["digest"], value["size"]
    if not isinstance(task, str) or not _TASK.match(task):
        raise RefusedRecord("its task id is malformed")
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise RefusedRecord("its digest is not a sha256 hex digest")
    if not _count(size):
        raise RefusedRecord("its size is not a byte count")
    if not _amount(value["created"]):
        raise RefusedRecord("its creation time is not a number")
    meta = value["meta"]
    if not isinstance(meta, dict):
        raise RefusedRecord("its provenance is not an object")
    for name, item in meta.items():
        if name not in _META:
            raise RefusedRecord(f"unknown provenance field {name!r}")
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, _META[name]):
            raise RefusedRecord(f"provenance field {name!r} has the wrong type")
        if _META[name] is _NUMBER and not _amount(item):
            raise RefusedRecord(f"provenance field {name!r} is not a finite, positive number")
        if isinstance(item, int) and item < 0:
            raise RefusedRecord(f"provenance field {name!r} is negative")
    material = meta.get("material")
    if not isinstance(material, dict):
        raise RefusedRecord("it has no key material")
    try:
        if key_of(material) != key:
            raise RefusedRecord("its key material does not hash to its key")
    except (TypeError, RecursionError):
        raise RefusedRecord("its key material cannot be hashed") from None
    return Result(key=key, task=task, digest=digest, size=size, meta=meta,
                  created=float(value["created"]))


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a field is given twice")
    return out


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _amount(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


# -- the store ----------------------------------------------------------------------------

class RemoteStore:
    """A remote tier at `url`. Async methods (obstore's own runtime does the I/O); errors
    are `RemoteError`, saying which remote and what failed."""

    def __init__(self, store: Bucket, url: str, *, writable: bool = True) -> None:
        self._store = store
        self.url = url                 # as shown to people: no query, no credentials
        self.writable = writable       # False when read anonymously (a fork's CI job)
        self._clock = f"clock/{secrets.token_hex(8)}"

    def __repr__(self) -> str:
        return f"RemoteStore({self.url!r})"

    @classmethod
    def open(cls, url: str, *, endpoint: str | None = None,
             anonymous: bool = False) -> RemoteStore:
        """`s3://bucket/prefix`, `gs://bucket/prefix`, `az://account/container/prefix` or
        `file:///absolute/path`. An S3-compatible service is named by `endpoint` (or the
        URL's `?endpoint=`); `?region=` sets the signing region. `anonymous` reads without
        signing requests, for public buckets (and writes nothing)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise ConfigError(f"remote {url!r}: expected an s3://, gs://, az:// or file:// URL")
        if parts.username or parts.password:
            raise ConfigError("the remote's URL must not hold credentials; they come from "
                              "the cloud's usual environment variables or files")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - set(_QUERY))
        if unknown:
            raise ConfigError(f"remote {url!r}: unknown option(s) {', '.join(unknown)}; "
                              f"known: {', '.join(_QUERY)}")
        endpoint = endpoint or _one(query, "endpoint")
        bare = parts._replace(query="", fragment="").geturl()
        store: Bucket
        options: dict[str, Any] = {"retry_config": {"max_retries": 3,
                                          "retry_timeout": timedelta(seconds=30)}}
        try:
            if scheme == "file":
                if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                    raise ConfigError(f"remote {url!r}: a file:// URL names an absolute "
                                      "path, e.g. file:///srv/wanflow")
                from obstore.store import LocalStore

                store = LocalStore(parts.path, mkdir=True)
            elif scheme == "s3":
                from obstore.store import S3Store

                store = S3Store.from_url(bare, **_s3_options(parts.netloc, endpoint,
                                                            _one(query, "region"), anonymous),
                                         **options)
            elif endpoint:
                raise ConfigError("--remote-endpoint names an S3-compatible service; use an "
                                  "s3:// URL with it")
            elif scheme == "gs":
                from obstore.store import GCSStore

                store = GCSStore.from_url(bare, skip_signature=anonymous, **options)
            else:
                from obstore.store import AzureStore

                store = AzureStore.from_url(bare, skip_signature=anonymous, **options)
        except BaseError as exc:
            raise ConfigError(f"remote {bare}: {_first_line(exc)}") from None
        return cls(store, bare, writable=not anonymous)

    # -- paths --------------------------------------------------------------------------

    # Names are relative to the versioned root; digests and keys are checked first, so a
    # name can never leave its folder.

    @staticmethod
    def object_name(digest: str) -> str:
        check_digest(digest)
        return f"objects/{digest[:2]}/{digest[2:]}"

    @staticmethod
    def result_name(key: str) -> str:
        check_digest(key)
        return f"results/{key[:2]}/{key}.json"

    # -- result records -------------------------------------------------------------------

    async def get_results(self, keys: Iterable[str]
                          ) -> tuple[dict[str, Result], dict[str, str]]:
        """The valid records of those keys the remote has, and the keys whose record was
        refused (with the reason). Many at once, `LOOKUPS` in flight."""
        gate = asyncio.Semaphore(LOOKUPS)

        async def one(key: str) -> tuple[str, Result | None, str | None]:
            async with gate:
                return (key, *await self.get_result(key))

        found: dict[str, Result] = {}
        refused: dict[str, str] = {}
        for key, record, why in await asyncio.gather(*map(one, dict.fromkeys(keys))):
            if record is not None:
                found[key] = record
            elif why is not None:
                refused[key] = why
        return found, refused

    async def get_result(self, key: str) -> tuple[Result | None, str | None]:
        """(record, None), (None, None) when there is none, (None, why) when it is refused."""
        try:
            data = await self.read(self.result_name(key), RECORD_LIMIT)
            if data is None:
                return None, None
            return decode_record(data, key), None
        except ValueError as exc:
            return None, str(exc)

    async def put_result(self, result: Result) -> None:
        await self.write(self.result_name(result.key), encode_record(result))

    # -- objects ----------------------------------------------------------------------------

    async def has_object(self, digest: str, size: int | None = None) -> bool:
        meta = await self._head(f"{ROOT}/{self.object_name(digest)}", "looking for an object")
        return meta is not None and (size is None or meta["size"] == size)

    async def upload(self, digest: str, path: StrPath, *, replace: bool = False) -> bool:
        """Upload a local file as the object `digest` (streamed, in parts when large);
        False when the remote already has it (unless `replace`: a corrupt copy)."""
        size = os.stat(path).st_size
        if not replace and await self.has_object(digest, size):
            return False
        await self._call(obstore.put_async(self._store, f"{ROOT}/{self.object_name(digest)}",
                                           Path(path)), "uploading an object")
        return True

    async def download(self, digest: str, objects: ObjectStore, size: int | None = None
                       ) -> bool:
        """Bring the object `digest` into the local store, hashing it as it streams in and
        resuming by byte range when a transfer breaks. False when the remote has no such
        object; CorruptObject when its bytes (or its size) are not those named."""
        path = f"{ROOT}/{self.object_name(digest)}"
        fd, name = objects.new_tmp("fetch")
        tmp: str | None = name
        hasher, got, failures = hashlib.sha256(), 0, 0
        etag: str | None = None
        try:
            try:
                while True:
                    # Resume where a broken transfer stopped, from the same version only.
                    options: GetOptions | None = (
                        {"range": {"offset": got}, "if_match": etag} if got else None)
                    try:
                        reply = await self._get(path, options)
                        if size is not None and not got and reply.meta["size"] != size:
                            raise CorruptObject(f"object {digest[:12]}… on {self.url} has "
                                                f"{reply.meta['size']} bytes, not {size}")
                        etag = etag or reply.meta.get("e_tag")
                        async for chunk in reply.stream(min_chunk_size=CHUNK):
                            _write_all(fd, chunk)
                            hasher.update(chunk)
                            got += len(chunk)
                        break
                    except FileNotFoundError:
                        return False
                    except (BaseError, OSError) as exc:
                        failures += 1
                        if failures >= TRANSFER_ATTEMPTS:
                            raise self._error(exc, "downloading an object") from None
                        if isinstance(exc, PreconditionError):   # replaced meanwhile: restart
                            hasher, got, etag = hashlib.sha256(), 0, None
                            os.ftruncate(fd, 0)
                            os.lseek(fd, 0, os.SEEK_SET)
                os.fsync(fd)
            finally:
                os.close(fd)
            if hasher.hexdigest() != digest:
                raise CorruptObject(f"object {digest[:12]}… on {self.url} does not hash to "
                                    "its name")
            objects.install(name, digest, got)
            tmp = None
            return True
        finally:
            if tmp is not None:
                unlink_quiet(tmp)

    # -- small objects (claims, the clock) --------------------------------------------------

    async def create(self, name: str, data: bytes) -> bool:
        """Write `name` only if it does not exist; False if it does (someone else won)."""
        try:
            await obstore.put_async(self._store, f"{ROOT}/{name}", data, mode="create")
        except (AlreadyExistsError, PreconditionError):
            return False
        except (BaseError, OSError) as exc:
            raise self._error(exc, "creating a claim") from None
        return True

    async def write(self, name: str, data: bytes) -> None:
        await self._call(obstore.put_async(self._store, f"{ROOT}/{name}", data),
                         "writing to the remote")

    async def read(self, name: str, limit: int) -> bytes | None:
        """The bytes of `name`, None when absent; ValueError when longer than `limit`
        (nothing that large is ours: it is not even read)."""
        try:
            reply = await obstore.get_async(self._store, f"{ROOT}/{name}")
            if reply.meta["size"] > limit:
                raise ValueError(f"larger than {limit} bytes")
            return bytes(await reply.bytes_async())
        except FileNotFoundError:
            return None
        except (BaseError, OSError) as exc:
            raise self._error(exc, "reading from the remote") from None

    async def delete(self, name: str) -> None:
        try:
            await obstore.delete_async(self._store, f"{ROOT}/{name}")
        except FileNotFoundError:
            pass
        except (BaseError, OSError) as exc:
            raise self._error(exc, "deleting from the remote") from None

    async def listing(self, prefix: str) -> dict[str, tuple[int, float]]:
        """name -> (size, Last-Modified as POSIX seconds) of the objects directly under
        `prefix`, by the store's clock."""
        full = f"{ROOT}/{prefix.rstrip('/')}"
        try:
            page = await obstore.list_with_delimiter_async(self._store, full)
        except FileNotFoundError:
            return {}
        except (BaseError, OSError) as exc:
            raise self._error(exc, "listing the remote") from None
        return {meta["path"][len(full) + 1:]: (meta["size"], meta["last_modified"].timestamp())
                for meta in page["objects"]}

    async def now(self) -> float:
        """The store's own time (POSIX seconds): write a small object and read back its
        Last-Modified. Staleness is judged by this clock alone, never by a runner's."""
        await self.write(self._clock, b"clock")
        meta = await self._head(f"{ROOT}/{self._clock}", "reading the store's clock")
        if meta is None:
            raise RemoteError(f"the remote {self.url} lost an object just written to it")
        return meta["last_modified"].timestamp()

    async def refuses_second_create(self) -> bool:
        """Whether a second create of the same object fails, as claims need."""
        name = f"probe/{secrets.token_hex(8)}"
        try:
            if not await self.create(name, b"first"):
                return False
            return not await self.create(name, b"second")
        except RemoteError as exc:
            if isinstance(exc.__context__, NotSupportedError):
                return False
            raise
        finally:
            with contextlib.suppress(RemoteError):   # a leftover probe object is harmless
                await self.delete(name)

    # -- errors -----------------------------------------------------------------------------

    async def _get(self, path: str, options: GetOptions | None) -> GetResult:
        """A streamed GET (one place, so that tests can break a transfer half-way)."""
        return await obstore.get_async(self._store, path, options=options)

    async def _head(self, path: str, action: str) -> ObjectMeta | None:
        try:
            return await obstore.head_async(self._store, path)
        except FileNotFoundError:
            return None
        except (BaseError, OSError) as exc:
            raise self._error(exc, action) from None

    async def _call(self, call: Awaitable[T], action: str) -> T:
        try:
            return await call
        except (BaseError, OSError) as exc:
            raise self._error(exc, action) from None

    def _error(self, exc: BaseException, action: str) -> RemoteError:
        detail = _first_line(exc)
        if isinstance(exc, (PermissionDeniedError, UnauthenticatedError)):
            err = RemoteError(f"the remote {self.url} refused {action} ({detail}); check "
                              "its credentials and permissions")
        else:
            err = RemoteError(f"cannot use the remote {self.url} while {action}: {detail}")
        err.__context__ = exc
        return err


def _s3_options(bucket: str, endpoint: str | None, region: str | None,
                anonymous: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if region:
        options["region"] = region
    if anonymous:
        options["skip_signature"] = True
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"remote endpoint {endpoint!r} must be an http(s) URL")
        if parts.scheme == "http":
            options["client_options"] = {"allow_http": True}
        host = parts.hostname or ""
        if host.endswith(".aliyuncs.com") and not host.startswith(f"{bucket}."):
            # Alibaba OSS answers only virtual-hosted requests (bucket in the host name).
            endpoint = parts._replace(netloc=f"{bucket}.{parts.netloc}").geturl()
            options["virtual_hosted_style_request"] = True
        options["endpoint"] = endpoint.rstrip("/")
    return options


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
