"""Generates Gateway API configs for Gatehouse benchmarks (stdlib only).

The route-scale shape (also what the criterion benches in benches/ load):
  * one Gateway `bench` with an HTTP listener on PORT and no hostname;
  * one gatehouse.dev Backend `echo` pointing at the fast backend;
  * N-1 "filler" HTTPRoutes.  Two thirds list the shared host
    api.example.com plus a host of their own (svc-I.example.com), one third
    a tenant wildcard (*.tenant-K.example.com).  Each has a PathPrefix
    /svc-I/vJ; every other one adds a header match (x-tenant: t-K), every
    fifth adds a second match (Exact /svc-I/health);
  * one "default" HTTPRoute on api.example.com with PathPrefix / and no
    headers: last in precedence on that host, so a request for
    http://api.example.com/bench is checked against every other entry of the
    host before it matches.

Run as a script: `python3 bench/routes.py N PORT BACKEND_PORT > config.yaml`.
"""

import sys

HOST = "api.example.com"

GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: gatehouse
spec:
  controllerName: gatehouse.dev/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bench
  namespace: default
spec:
  gatewayClassName: gatehouse
  listeners:
  - name: http
    protocol: HTTP
    port: {port}
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata:
  name: echo
  namespace: default
spec:
  endpoints:
  - host: 127.0.0.1
    port: {backend_port}
"""

BACKEND_REF = "    backendRefs: [{group: gatehouse.dev, kind: Backend, name: echo}]\n"


def filler_route(i):
    """The i-th filler route (never matches a request for HOST + /bench)."""
    if i % 3 == 2:
        hostnames = f'["*.tenant-{i % 97}.example.com"]'
    else:
        hostnames = f'["{HOST}", "svc-{i}.example.com"]'
    first = f"    - path: {{type: PathPrefix, value: /svc-{i}/v{i % 3 + 1}}}\n"
    if i % 2 == 0:
        first += f"      headers: [{{name: x-tenant, value: t-{i % 50}}}]\n"
    second = ""
    if i % 5 == 0:
        second = f"    - path: {{type: Exact, value: /svc-{i}/health}}\n"
    return (
        "---\n"
        "apiVersion: gateway.networking.k8s.io/v1\n"
        "kind: HTTPRoute\n"
        "metadata:\n"
        f"  name: svc-{i}\n"
        "  namespace: default\n"
        "spec:\n"
        "  parentRefs: [{name: bench}]\n"
        f"  hostnames: {hostnames}\n"
        "  rules:\n"
        "  - matches:\n"
        f"{first}{second}{BACKEND_REF}"
    )


def default_route(name="zz-default", path="/"):
    """The route the benchmark's requests match: last in precedence on HOST."""
    return (
        "---\n"
        "apiVersion: gateway.networking.k8s.io/v1\n"
        "kind: HTTPRoute\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  namespace: default\n"
        "spec:\n"
        "  parentRefs: [{name: bench}]\n"
        f'  hostnames: ["{HOST}"]\n'
        "  rules:\n"
        "  - matches:\n"
        f"    - path: {{type: PathPrefix, value: {path}}}\n"
        f"{BACKEND_REF}"
    )


def probe_route(tag):
    """A route that exists only after change `tag` (for convergence runs)."""
    return (
        "---\n"
        "apiVersion: gateway.networking.k8s.io/v1\n"
        "kind: HTTPRoute\n"
        "metadata:\n"
        "  name: probe\n"
        "  namespace: default\n"
        "spec:\n"
        "  parentRefs: [{name: bench}]\n"
        '  hostnames: ["probe.example.com"]\n'
        "  rules:\n"
        "  - matches:\n"
        f"    - path: {{type: Exact, value: /probe-{tag}}}\n"
        f"{BACKEND_REF}"
    )


def config(routes, port, backend_port, extra=""):
    """A whole config with `routes` HTTPRoutes (the last one the default)."""
    parts = [GATEWAY.format(port=port, backend_port=backend_port)]
    parts.extend(filler_route(i) for i in range(max(routes, 1) - 1))
    parts.append(default_route())
    parts.append(extra)
    return "".join(parts)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: routes.py ROUTES PORT BACKEND_PORT")
    sys.stdout.write(config(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
