"""The tasks a run does on this machine: bring an asset into the store, take a frame of a
clip, assemble a scene or a film. Each runs in a worker thread and returns the stored result.

Inputs are read from the store only after their digest is checked again: a cache may be
restored from elsewhere, and a corrupt clip must never be built into a scene.
"""
from __future__ import annotations

import http.client
import os
import socket
import time
import urllib.request
from collections.abc import Mapping

from ..errors import MediaError
from ..plan import keys
from ..plan.prepare import Prepared
from ..plan.tasks import AssembleTask, AssetTask, FrameTask, Output, Task, TaskId
from ..store import Result, Store
from ..store.fs import unlink_quiet


def run_local(task: Task, prepared: Prepared, store: Store,
              outputs: Mapping[TaskId, Output]) -> Result:
    if isinstance(task, AssetTask):
        return _asset(task, prepared, store)
    from .. import media  # PyAV and numpy load only when there is media work to do

    meta: dict = {"material": prepared.material, "kind": task.kind}
    tmp = store.objects.temp_path(".png" if isinstance(task, FrameTask) else ".mp4")
    try:
        if isinstance(task, FrameTask):
            media.extract_frame(verified_input(store, task, outputs[task.inputs[0]]), tmp,
                                task.which)
        else:
            assert isinstance(task, AssembleTask)
            paths = [verified_input(store, task, outputs[c]) for c in task.clips]
            bed = None
            if task.bed is not None and task.bed_input is not None:
                bed = media.AudioBed(verified_input(store, task, outputs[task.bed_input]),
                                     volume=task.bed.volume, duck=task.bed.duck,
                                     loop=task.bed.loop, fade=task.bed.fade)
            joins = [(task.transition.type, task.transition.seconds)] * (len(paths) - 1)
            media.assemble(paths, tmp, transitions=joins, width=task.width,
                           height=task.height, fps=task.fps, bed=bed)
            probe = media.probe(tmp)
            meta.update(duration=round(probe.duration, 3), width=probe.width,
                        height=probe.height)
        digest, size = store.objects.put_file(tmp, move=True)
    finally:
        unlink_quiet(tmp)
    result = Result(key=prepared.key, task=task.id, digest=digest, size=size, meta=meta,
                    created=time.time())
    store.actions.put(result)
    return result


def verified_input(store: Store, task: Task, output: Output) -> str:
    """The store path of an input after re-hashing it (a corrupt object is removed)."""
    path = store.objects.verified_path(output.digest)
    if path is None:
        raise MediaError(f"{task.id}: an input ({output.digest[:12]}…) is missing or corrupt "
                         "in the cache and was removed; run again to regenerate it")
    return str(path)


def _asset(task: AssetTask, prepared: Prepared, store: Store) -> Result:
    material = prepared.material
    key = prepared.key
    if task.asset.file is not None:
        digest, size = store.objects.put_file(task.asset.file)
    else:
        assert task.asset.url is not None
        tmp = store.objects.temp_path(os.path.splitext(task.asset.url)[1][:8])
        try:
            fetch(task.asset.url, tmp)
            digest, size = store.objects.put_file(tmp, move=True)
        finally:
            unlink_quiet(tmp)
        material = {"kind": "asset", "digest": digest}
        key = keys.key_of(material)
    meta = {"material": material, "kind": "asset",
            "source": task.asset.path or task.asset.url}
    result = Result(key=key, task=task.id, digest=digest, size=size, meta=meta,
                    created=time.time())
    store.actions.put(result)
    return result


def fetch(url: str, dest: str) -> None:
    """Download an http(s) asset (remote assets are pinned by content in the lock file).

    Only from public hosts: every connection, redirects included, goes to an address that was
    checked after resolving the host name (a spec must not make CI probe its own network),
    and never through a proxy, which would resolve the name where wanflow cannot check it."""
    from ..spec import urls  # only a run with URL assets needs it

    problem = urls.url_problem(url)
    if problem:
        raise MediaError(f"cannot fetch asset {url}: {problem}")
    opener = urllib.request.OpenerDirector()
    for handler in (_PublicHTTPHandler(), _PublicHTTPSHandler(),
                    urllib.request.HTTPRedirectHandler(),    # http(s) only: no ftp or file handler
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    try:
        with opener.open(url, timeout=60) as resp, open(dest, "wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except (OSError, http.client.HTTPException) as err:
        raise MediaError(f"cannot fetch asset {url}: {err}") from None


# socket's "no timeout given" marker, the default of create_connection (typeshed omits it).
_NO_TIMEOUT: object = socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


def _public_connection(address: tuple[str, int], timeout: object = _NO_TIMEOUT,
                       source_address: object = None) -> socket.socket:
    """`socket.create_connection`, but only to addresses that are public, all of them checked
    before the first is tried (a name that also resolves inward is refused whole)."""
    import ipaddress

    from ..spec import urls

    host, port = address
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        kind = urls.refusal(ip)
        if kind:
            raise ConnectionRefusedError(f"refusing to connect to {host}: it resolves to {ip} "
                                         f"({kind}); asset URLs must name a public host")
    error: OSError = OSError(f"cannot resolve {host}")
    for family, kind_, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind_, proto)
        try:
            if timeout is None or isinstance(timeout, (int, float)):   # not _NO_TIMEOUT
                sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as err:
            sock.close()
            error = err
    raise error


class _PublicHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _public_connection


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _public_connection


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_PublicHTTPSConnection, req, context=self._context)
