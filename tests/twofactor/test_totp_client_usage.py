"""scripts/totp_client.py as a new user meets it: `--help` in whole sentences, and outside the
project's virtualenv a sentence saying how to run it, never a ModuleNotFoundError traceback."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.servers import PROJECT_DIR

SCRIPT = PROJECT_DIR / "scripts" / "totp_client.py"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def run(*args: str, outside_the_virtualenv: bool = False) -> subprocess.CompletedProcess:
    """The script run as typed; `-S -I` leaves the virtualenv's packages out, as a system
    Python would."""
    python = [sys.executable, "-S", "-I"] if outside_the_virtualenv else [sys.executable]
    return subprocess.run(
        [*python, str(SCRIPT), *args], capture_output=True, text=True, timeout=30, cwd="/"
    )


def paragraphs(text: str) -> list[str]:
    """Blocks of prose, with argparse's line wrapping undone."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def option_helps(help_text: str) -> dict[str, str]:
    """Each argument's help, its wrapped lines joined."""
    helps, name = {}, None
    for line in help_text.splitlines():
        match = re.match(r"^  (\S+(?:, \S+)*)(?:\s{2,}(.*))?$", line)
        if match:
            name = match.group(1)
            helps[name] = match.group(2) or ""
        elif name and line.startswith(" " * 10) and line.strip():
            helps[name] = f"{helps[name]} {line.strip()}".strip()
        else:
            name = None
    return helps


def test_help_describes_the_script_in_whole_sentences():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    _usage, _, rest = result.stdout.partition("\n\n")
    description = rest.split("\npositional arguments:")[0]
    [summary] = paragraphs(description)
    assert summary.startswith("An authenticator app for the terminal.")
    assert summary.endswith("without a phone.")


def test_every_argument_is_explained_by_a_sentence():
    helps = option_helps(run("--help").stdout)
    assert set(helps) == {"secret_or_uri", "-h, --help", "--once"}
    for name in ("secret_or_uri", "--once"):
        assert re.fullmatch(r"[A-Z].*\.", helps[name]), (name, helps[name])


def test_help_ends_with_how_to_run_it():
    epilog = run("--help").stdout.split("\noptions:")[1]
    assert ".venv/bin/python scripts/totp_client.py --once SECRET_OR_URI" in epilog


def test_outside_the_virtualenv_it_says_how_to_run_it_instead_of_a_traceback():
    result = run("--once", SECRET, outside_the_virtualenv=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "ModuleNotFoundError" not in result.stderr
    assert "does not have django-otp" in result.stderr
    assert f"cd {PROJECT_DIR} && make install-dev" in result.stderr
    assert f"{PROJECT_DIR}/.venv/bin/python scripts/totp_client.py SECRET_OR_URI" in result.stderr
    assert result.stdout == ""


def test_help_works_outside_the_virtualenv_too():
    result = run("--help", outside_the_virtualenv=True)
    assert result.returncode == 0, result.stderr
    assert "An authenticator app for the terminal." in result.stdout
