"""Call dbapi's actions over gRPC by hand.

    python -m apps.rpc call example bar '{"name": "ana"}'
    python -m apps.rpc stream example numbers '{"count": 5}'

The target and key come from --target / --key, else DBAPI_GRPC_TARGET / DBAPI_API_KEY
(this is a client: it reads no Django settings). A call prints its result as JSON, a stream one
JSON line per item; a failure prints the status, the request id and the problem (or that the
server could not be reached), and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .client import ActionCallError, ActionsClient


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m apps.rpc", description=__doc__.split("\n")[0])
    parser.add_argument("how", choices=["call", "stream"], help="call: one result; stream: rows")
    parser.add_argument("module")
    parser.add_argument("action")
    parser.add_argument("params", nargs="?", default="{}", help="the input, a JSON object")
    parser.add_argument(
        "--target",
        default=os.environ.get("DBAPI_GRPC_TARGET", "127.0.0.1:50051"),
        help="host:port of the gRPC server (DBAPI_GRPC_TARGET; default %(default)s)",
    )
    parser.add_argument(
        "--key", default=os.environ.get("DBAPI_API_KEY"), help="API key (DBAPI_API_KEY)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--request-id", help="sent as x-request-id, to find the call in the logs")
    parser.add_argument("--tls", action="store_true", help="use TLS with the system's roots")
    args = parser.parse_args(argv)
    try:
        args.params = json.loads(args.params)
    except ValueError as exc:
        parser.error(f"params is not valid JSON: {exc}")
    if not isinstance(args.params, dict):
        parser.error("params must be a JSON object")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    client = ActionsClient(
        args.target, args.key, timeout=args.timeout, request_id=args.request_id, secure=args.tls
    )
    try:
        with client:
            if args.how == "call":
                result = client.call(args.module, args.action, **args.params)
                sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
            else:
                for row in client.stream(args.module, args.action, **args.params):
                    sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    except ActionCallError as exc:
        sys.stderr.write(failure(exc, target=args.target) + "\n")
        if exc.problem:
            sys.stderr.write(json.dumps(exc.problem, indent=2, ensure_ascii=False) + "\n")
        return 1
    return 0


def failure(exc: ActionCallError, *, target: str) -> str:
    """The line that says why a call failed: the server's status and request id, or that no
    server could be reached (then there is no request id to quote)."""
    if exc.unreachable:
        return f"Could not reach the gRPC server at {target}: {exc.details}"
    if exc.request_id is None:
        return str(exc)
    return f"{exc} (request id {exc.request_id})"


if __name__ == "__main__":
    sys.exit(main())
