"""The translation catalogues are compiled wherever the project runs (`make run`, `make test`; the
image in tests/deploy/test_image.py), with GNU gettext's msgfmt installed where it is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import PROJECT_DIR

SCRIPT = PROJECT_DIR / "scripts" / "system-packages.sh"
# What the script needs from the system besides the commands a test gives it.
SCRIPT_TOOLS = ["bash", "ls", "grep"]


# What each target ends with: the step the compiled catalogues must exist before.
LAST_STEP = {"run": "manage.py runserver", "test": "-m pytest"}


def planned(target: str) -> list[str]:
    """The commands `make <target>` would run, in order (`make -n`, which runs nothing, though it
    follows `make test`'s recursive make of the checks)."""
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", target],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("target", ["run", "test"])
def test_make_run_and_make_test_compile_the_catalogues_first(target):
    commands = planned(target)
    compiles = [i for i, line in enumerate(commands) if "manage.py compilemessages" in line]
    [last] = [i for i, line in enumerate(commands) if LAST_STEP[target] in line]
    assert compiles, commands
    assert compiles[0] < last, commands


def test_compilemessages_installs_gettext_where_msgfmt_is_missing():
    makefile = (PROJECT_DIR / "Makefile").read_text()
    recipe = makefile.split("\ncompilemessages:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/system-packages.sh gettext:msgfmt" in recipe
    assert "manage.py compilemessages" in recipe


def run_script(tmp_path: Path, *arguments: str, commands: list[str]) -> list[str]:
    """system-packages.sh on a PATH holding only `commands` (empty scripts) and a recording
    apt-get; returns the apt-get command lines it ran."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in SCRIPT_TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for command in commands:
        stub = bin_dir / command
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    log = tmp_path / "apt-get.log"
    apt_get = bin_dir / "apt-get"
    apt_get.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    apt_get.chmod(0o755)
    identity = bin_dir / "id"
    identity.write_text("#!/bin/sh\necho 0\n")  # as root, so the script installs
    identity.chmod(0o755)
    result = subprocess.run(
        [str(SCRIPT), *arguments],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_gettext_is_installed_on_a_machine_with_only_gettext_base(tmp_path):
    """Debian's gettext-base has a `gettext` command but no msgfmt: the script asks for msgfmt."""
    installs = [
        line
        for line in run_script(tmp_path, "gettext:msgfmt", commands=["gettext"])
        if "install" in line
    ]
    assert len(installs) == 1
    assert installs[0].split()[-1] == "gettext"
    assert "--no-install-recommends" in installs[0]


def test_nothing_is_installed_where_msgfmt_is(tmp_path):
    assert run_script(tmp_path, "gettext:msgfmt", "nginx", commands=["msgfmt", "nginx"]) == []


def test_a_package_named_alone_is_looked_for_by_its_own_command(tmp_path):
    installs = run_script(tmp_path, "wrk", "gettext:msgfmt", commands=["msgfmt"])
    assert [line.split()[-1] for line in installs if "install" in line] == ["wrk"]
