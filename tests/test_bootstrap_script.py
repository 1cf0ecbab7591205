"""script/bootstrap installs nginx for the scale-out tests without enabling its service at
boot: ``disable_at_boot`` asks systemd and SysV init, whichever are here, and the install
keeps its policy-rc.d, so the service never starts either."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

BOOTSTRAP = Path(__file__).resolve().parent.parent / "script" / "bootstrap"
FAKE_TOOL = '#!/bin/sh\necho "${{0##*/}} $*" >> "$CALLS"\nexit {status}\n'


def function(name: str) -> str:
    """The shell function ``name`` as script/bootstrap defines it."""
    match = re.search(rf"^{name}\(\) \{{\n.*?^\}}\n", BOOTSTRAP.read_text(), flags=re.M | re.S)
    assert match, f"script/bootstrap defines no {name}()"
    return match.group(0)


def run_disable_at_boot(tmp_path: Path, tools: dict[str, int]) -> tuple[list[str], str]:
    """Run ``disable_at_boot nginx`` with only ``tools`` (name: exit status) on the PATH,
    as fakes that note how they were called."""
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name, status in tools.items():
        tool = fakes / name
        tool.write_text(FAKE_TOOL.format(status=status))
        tool.chmod(0o755)
    calls = tmp_path / "calls"
    script = 'SUDO=""\nsay() { echo "==> $*"; }\n' + function("disable_at_boot")
    script += "disable_at_boot nginx\n"
    # Only the fakes are on the PATH (the function needs nothing else), so real tools of
    # this machine are never asked.
    done = subprocess.run(  # noqa: S603 - bash and a script of this repository
        ["/bin/bash", "-c", script],
        env={"PATH": str(fakes), "CALLS": str(calls), "HOME": os.environ["HOME"]},
        capture_output=True,
        text=True,
        check=True,
    )
    return (calls.read_text().splitlines() if calls.exists() else []), done.stdout


def test_nginx_is_disabled_at_boot_right_after_its_install() -> None:
    text = BOOTSTRAP.read_text()
    branch = re.search(r"if \[ ! -x /usr/sbin/nginx \]; then\n(.*?)\n  fi", text, flags=re.S)
    assert branch, "the nginx install branch is gone"
    assert branch.group(1).split() == ["apt_install_unstarted", "nginx", "disable_at_boot", "nginx"]
    # The install itself still runs under a policy-rc.d that refuses every start.
    assert "printf '#!/bin/sh\\nexit 101\\n' | $SUDO tee /usr/sbin/policy-rc.d" in text


def test_disable_at_boot_asks_systemd_and_sysv_init(tmp_path: Path) -> None:
    calls, said = run_disable_at_boot(tmp_path, {"systemctl": 0, "update-rc.d": 0})
    assert calls == ["systemctl disable --quiet nginx", "update-rc.d nginx disable"]
    assert "could not" not in said


def test_disable_at_boot_says_when_a_tool_refuses_and_goes_on(tmp_path: Path) -> None:
    calls, said = run_disable_at_boot(tmp_path, {"systemctl": 1, "update-rc.d": 0})
    assert calls == ["systemctl disable --quiet nginx", "update-rc.d nginx disable"]
    assert "(nginx: systemctl could not disable it)" in said


def test_disable_at_boot_without_either_tool_does_nothing(tmp_path: Path) -> None:
    calls, said = run_disable_at_boot(tmp_path, {})
    assert calls == []
    assert said == ""
