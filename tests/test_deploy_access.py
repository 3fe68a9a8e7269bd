"""The Pi installer's access token (``install-pi.sh --service --dry-run``) and the unit that passes it.

A dry run with a faked Raspberry Pi OS, as in ``test_pi_emulation.py``: the plan
must create the token's folder and file with their final owner and mode before
any secret is written, name the file in /etc/default/edgekit, never print a token,
and the unit must hand the file to ``serve --token-file``. The server side of the
same file is checked by loading a token generated with the installer's command.
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from edge_runner.web.access import Token, load_token

DEPLOY = REPO / "edge_runner" / "deploy"
INSTALLER = DEPLOY / "install-pi.sh"
BOOKWORM = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


def dry_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    os_release = tmp_path / "os-release"
    os_release.write_text(BOOKWORM)
    model = tmp_path / "device-model"
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.5\x00")
    env = {
        **os.environ, "EDGEKIT_OS_RELEASE": str(os_release), "EDGEKIT_DPKG_ARCH": "arm64", "EDGEKIT_UNAME_M": "aarch64",
        "EDGEKIT_DEVICE_MODEL": str(model), "EDGEKIT_SYSTEM_NUMPY": "",
    }  # fmt: skip
    return subprocess.run(
        ["bash", str(INSTALLER), "--dry-run", "--no-apt", "--venv", str(tmp_path / "venv"), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )


@pytest.mark.skipif(not shutil.which("systemctl"), reason="--service needs systemctl")
@pytest.mark.skipif(Path("/etc/edgekit/token").exists(), reason="this machine already has an edgekit token")
def test_service_dry_run_plans_a_private_token_file_before_writing_it(tmp_path):
    done = dry_run(tmp_path, "--service")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    group = grp.getgrgid(pwd.getpwnam(os.environ.get("SUDO_USER") or getpass.getuser()).pw_gid).gr_name
    sudo = "" if os.geteuid() == 0 else "sudo "
    steps = [
        f"+ {sudo}install -d -m 0750 -o root -g {group} /etc/edgekit",
        f"+ {sudo}install -m 0640 -o root -g {group} /dev/null /etc/edgekit/token",
        "+ write a new token to /etc/edgekit/token",
        "+ write /etc/systemd/system/edgekit.service:",
        "+ write /etc/default/edgekit:",
        f"+ {sudo}systemctl enable --now edgekit.service",
    ]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions), out  # the file exists with its mode before anything is written into it
    defaults = out.split("+ write /etc/default/edgekit:\n", 1)[1].split("\n+ ", 1)[0]
    assert "EDGEKIT_TOKEN_FILE=/etc/edgekit/token" in defaults.splitlines()
    assert 'EDGEKIT_SERVE_ARGS="--host 0.0.0.0 --port 8000"' in defaults.splitlines()
    assert "the access token of the web page" not in out  # a dry run shows no token
    assert "--token-file /etc/edgekit/token" in out.splitlines()[-1]  # the hint for serving by hand


def test_without_service_no_token_is_made(tmp_path):
    done = dry_run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "/etc/edgekit" not in done.stdout.replace("--token-file FILE", "")
    assert "--token-file FILE" in done.stdout.splitlines()[-1]


def test_unit_passes_the_token_file_to_serve(tmp_path):
    unit = (DEPLOY / "edgekit.service").read_text()
    lines = unit.splitlines()
    assert "Environment=EDGEKIT_TOKEN_FILE=/etc/edgekit/token" in lines  # a default if /etc/default/edgekit has none
    assert lines.index("Environment=EDGEKIT_TOKEN_FILE=/etc/edgekit/token") < lines.index("EnvironmentFile=-/etc/default/edgekit")
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_start.endswith("serve --camera --token-file ${EDGEKIT_TOKEN_FILE} $EDGEKIT_SERVE_ARGS")
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed: the rendered unit was not verified")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "edge-runner").symlink_to(sys.executable)  # systemd-analyze checks that ExecStart exists
    for key, value in {"@USER@": getpass.getuser(), "@REPO@": str(REPO), "@VENV@": str(venv)}.items():
        unit = unit.replace(key, value)
    (tmp_path / "edgekit.service").write_text(unit)
    verify = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "edgekit.service")], capture_output=True, text=True)
    assert verify.returncode == 0 and "edgekit.service" not in verify.stderr, verify.stderr


def test_the_installers_token_command_makes_a_token_serve_accepts(tmp_path):
    script = INSTALLER.read_text()
    command = "import secrets; print(secrets.token_urlsafe(24))"
    assert f"python3 -c '{command}'" in script
    token_file = tmp_path / "token"
    token_file.write_text(subprocess.run([sys.executable, "-c", command], capture_output=True, text=True, check=True).stdout)
    token = load_token(token_file)
    assert isinstance(token, Token) and len(token.value) == 32 and token.matches(token_file.read_text().strip())
