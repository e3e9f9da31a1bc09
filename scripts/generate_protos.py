"""Generate the Python modules for every .proto under protos/ (`make protos`).

The generated modules are committed next to their .proto files, so that the image and a fresh
checkout need no code generation (nor grpcio-tools at run time); tests/rpc/test_protos.py runs
this into a temporary folder and fails when the committed modules differ from what it writes.

    python scripts/generate_protos.py [--out DIR]

protoc runs from the project root with `-I.`, so that a generated `_pb2_grpc.py` imports
`from protos.dbapi.v1 import actions_pb2`, a package import that works from anywhere.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def proto_files() -> list[str]:
    protos = (PROJECT_DIR / "protos").rglob("*.proto")
    return sorted(str(path.relative_to(PROJECT_DIR)) for path in protos)


def generate(out: Path) -> None:
    """Write the _pb2.py, _pb2.pyi and _pb2_grpc.py of every proto file under `out`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",  # adds the well-known types (google/protobuf/*.proto)
            "-I.",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *proto_files(),
        ],
        cwd=PROJECT_DIR,
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_DIR, help="default: next to them")
    args = parser.parse_args()
    generate(args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
