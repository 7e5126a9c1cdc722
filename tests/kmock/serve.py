"""A kmock API server for tests/controller_smoke.rs.

Serves, on 127.0.0.1 and a free port, every resource `gatehouse controller`
lists, watches and writes, preloaded with the objects of a JSON file, and
records every request it receives as one JSON line in a log file.

    python3 tests/kmock/serve.py OBJECTS.json REQUESTS.jsonl

Prints `listening <port>` once serving; exits when stdin closes (the test
holds it open), on SIGTERM or on SIGINT.

kmock's KubernetesEmulator does the list / watch / get / create / patch /
delete bookkeeping. Where it differs from a real API server in ways kube-rs
notices, this file closes the gap, and no further:

* error Status bodies carry the API server's reasons (`NotFound`,
  `AlreadyExists`, `Conflict`): kube-rs' `Api::get_opt` recognises a missing
  object by `reason: NotFound`, and kmock says `Object Not Found`;
* every write stamps a new `metadata.resourceVersion` (plus `uid` and
  `creationTimestamp` on creation): kube-rs' watcher drops a watch whose
  events carry none;
* `PUT` on a named object replaces it, answering 409 when the body's
  resourceVersion is stale (kmock leaves PUT unhandled; Lease updates use it);
* a server-side apply (`application/apply-patch+yaml`) of a missing object
  creates it;
* Namespaces are stored under the alias plural `v1/clusternamespaces`:
  kmock 0.8 reads `/api/v1/namespaces[/NAME]` as a namespace prefix with no
  resource after it and fails the request with a 500 (its `parse_path`), so
  those two paths are rewritten before kmock parses them (and are logged
  rewritten).

Patches stay kmock's recursive dict merge; there is no field management,
defaulting or validation. List and watch ignore label and field selectors.
"""

import asyncio
import datetime
import itertools
import json
import re
import signal
import sys
import uuid

try:
    import aiohttp.web
    import kmock
    from kmock._internal.k8s import KubernetesObjectConflictError
except ImportError as error:  # the test turns this into its failure message
    print(f"kmock is not installed ({error}): pip install kmock==0.8", flush=True)
    sys.exit(3)

# Every kind `gatehouse controller` reads or writes (a kind missing here lists
# as 404, which the controller logs as an uninstalled CRD and the test fails
# on): (group/version/plural, kind, namespaced, subresources).
RESOURCES = [
    ("gateway.networking.k8s.io/v1/gatewayclasses", "GatewayClass", False, {"status"}),
    ("gateway.networking.k8s.io/v1/gateways", "Gateway", True, {"status"}),
    ("gateway.networking.k8s.io/v1/httproutes", "HTTPRoute", True, {"status"}),
    ("gateway.networking.k8s.io/v1/referencegrants", "ReferenceGrant", True, set()),
    ("v1/clusternamespaces", "Namespace", False, {"status"}),
    ("v1/services", "Service", True, {"status"}),
    ("v1/secrets", "Secret", True, set()),
    ("discovery.k8s.io/v1/endpointslices", "EndpointSlice", True, set()),
    ("gatehouse.dev/v1alpha1/backends", "Backend", True, {"status"}),
    ("gatehouse.dev/v1alpha1/directresponses", "DirectResponse", True, set()),
    ("gatehouse.dev/v1alpha1/gatewayparameters", "GatewayParameters", True, set()),
    ("coordination.k8s.io/v1/leases", "Lease", True, set()),
]

VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}

# The Namespace list / watch / get paths, which kmock cannot parse.
NAMESPACES = re.compile(r"^/api/v1/namespaces(/[^/]+)?$")

REASONS = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed",
           409: "Conflict", 422: "Invalid", 500: "InternalError"}


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator with the gaps above closed and every request logged."""

    def __init__(self, log, **kwargs):
        super().__init__(**kwargs)
        self.log = log
        self.versions = itertools.count(1000)

    def stamp(self, obj, created=False):
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self.versions))
        if created:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault(
                "creationTimestamp",
                datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )

    def record(self, request):
        line = {
            "method": str(request.method.value),
            "path": request.url.path,
            "query": dict(request.params),
            "contentType": request.headers.get("Content-Type"),
            "body": request.data if request.data is not None else (request.text or None),
        }
        self.log.write(json.dumps(line) + "\n")
        self.log.flush()

    async def __call__(self, raw_request):
        match = NAMESPACES.match(raw_request.path)
        if match:
            url = raw_request.rel_url
            path = "/api/v1/clusternamespaces" + (match.group(1) or "")
            raw_request = raw_request.clone(rel_url=url.with_path(path).with_query(url.query))
        return await super().__call__(raw_request)

    async def _handle(self, request):
        self.record(request)
        if request.resource is not None and isinstance(request.data, dict):
            key = (request.resource, request.namespace, request.name)
            if request.action == kmock.action.CREATE:
                self.stamp(request.data, created=True)
            elif request.action == kmock.action.UPDATE:
                self.stamp(request.data)
                apply = "apply-patch" in request.headers.get("Content-Type", "")
                missing = key not in self.objects or self.objects[key].deleted
                if apply and missing:
                    return await self.create_by_apply(request, key)
            elif request.method == kmock.method.PUT and request.name is not None:
                return await self.replace(request, key)
        return await super()._handle(request)

    async def replace(self, request, key):
        async with self._lock:
            if key not in self.objects or self.objects[key].deleted:
                raise kmock.KubernetesNotFoundError()
            current = self.objects[key].raw.get("metadata", {}).get("resourceVersion")
            sent = request.data.get("metadata", {}).get("resourceVersion")
            if sent and sent != current:
                raise kmock.KubernetesError(
                    status=409, reason="Conflict",
                    message=f"resourceVersion {sent} is stale; the object is at {current}",
                )
            self.stamp(request.data)
            self.objects[key].create(request.data)  # a new version, replacing the old
            raw = self.objects[key].raw
            await self._buses[request.resource].put({"type": "MODIFIED", "object": raw})
        return aiohttp.web.json_response(raw)

    async def create_by_apply(self, request, key):
        async with self._lock:
            self.stamp(request.data, created=True)
            self.objects[key] = request.data
            raw = self.objects[key].raw
            await self._buses[request.resource].put({"type": "ADDED", "object": raw})
        return aiohttp.web.json_response(raw, status=201)

    async def _render_error(self, exc):
        status = exc.status if isinstance(exc, kmock.KubernetesError) else 500
        reason = REASONS.get(status, "InternalError")
        if isinstance(exc, KubernetesObjectConflictError):
            reason = "AlreadyExists"
        message = getattr(exc, "message", None) or repr(exc)
        return aiohttp.web.json_response({
            "apiVersion": "v1", "kind": "Status", "metadata": {},
            "status": "Failure", "code": status, "reason": reason, "message": message,
        }, status=status)


def preload(emulator, objects):
    plurals = {}
    for path, kind, namespaced, subresources in RESOURCES:
        emulator.resources[path] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, verbs=VERBS, subresources=subresources,
        )
        group_version = path.rsplit("/", 1)[0]
        plurals[(group_version, kind)] = kmock.resource(path)
    for obj in objects:
        resource = plurals[(obj["apiVersion"], obj["kind"])]
        meta = obj["metadata"]
        emulator.stamp(obj, created=True)
        emulator.objects[resource, meta.get("namespace"), meta["name"]] = obj


async def main(objects_path, log_path):
    with open(objects_path, encoding="utf-8") as f:
        objects = json.load(f)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The test holds stdin open: if it dies, so do we.
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1() or stop.set())
    with open(log_path, "a", encoding="utf-8") as log:
        async with Emulator(log) as emulator, kmock.Server(emulator, host="127.0.0.1") as server:
            preload(emulator, objects)
            print(f"listening {server.port}", flush=True)
            await stop.wait()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
