"""The generated gRPC modules are committed; they must be what `make protos` writes now."""

from __future__ import annotations

import subprocess
import sys

from tests.servers import PROJECT_DIR

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generated_files(root) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in (root / "protos").rglob("*")
        if path.name.endswith(GENERATED_SUFFIXES)
    }


def test_the_committed_generated_modules_are_not_stale(tmp_path):
    subprocess.run(
        [sys.executable, "scripts/generate_protos.py", "--out", str(tmp_path)],
        cwd=PROJECT_DIR,
        check=True,
    )
    fresh = generated_files(tmp_path)
    assert {"protos/dbapi/v1/actions_pb2_grpc.py", "protos/api/api_pb2.py"} <= set(fresh)
    committed = generated_files(PROJECT_DIR)
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert stale == [], f"run `make protos`: {stale} differ from what protoc writes"
