"""The wheel, installed into a fresh virtualenv, migrates, serves and sends mail.

A normal install (not editable) has only what the wheel carries: every subpackage, the
migrations, the templates and the static files must be in it. This builds the wheel from
the checkout, installs it into a new virtualenv and, from a directory outside the
checkout, follows the README's "Installing without a checkout": the variables it exports
(with this test's values) and nothing else the app needs, then its ``migrate`` and
``serve``. It loads the pages, signs up through the real forms, and receives the mail that
the served app's own mail worker sends. The wheel is built without build isolation
(hatchling is a dev dependency); its dependencies come from the package index, quickly
once pip's cache holds them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from quartapp.infra.database import database_name

from .conftest import DATABASE_URL, PASSWORD
from .support.app_servers import TEST_SETTINGS, delete_redis_keys, launch, new_redis_prefix
from .support.databases import drop_database
from .support.http import Browser
from .support.mail_servers import MailCatcher, text_of, to
from .support.processes import ROOT, free_port
from .support.settings import PUBLIC_URL, REDIS_URL

pytestmark = pytest.mark.slow

INSTALL_TIMEOUT = 600
STATIC_URL = re.compile(r'(?:src|href)="(/static/[^"]+)"')
RECIPE = re.compile(r"### Installing without a checkout\n.*?```sh\n(.*?)```", re.DOTALL)
EXPORT = re.compile(r"^export (QUARTAPP_[A-Z_]+)=", re.MULTILINE)
VERIFY = "Confirm your email address"


def readme_recipe() -> tuple[list[str], list[str]]:
    """The README's install recipe: the variables it exports, and its ``quartapp``
    commands (``migrate``, ``serve``) as written."""
    match = RECIPE.search((ROOT / "README.md").read_text())
    assert match, "README.md has no 'Installing without a checkout' recipe"
    recipe = match.group(1)
    commands = [
        line.split("#")[0].split()[3:]
        for line in recipe.splitlines()
        if line.startswith("venv/bin/python -m quartapp ")
    ]
    return EXPORT.findall(recipe), [" ".join(command) for command in commands]


def run(
    command: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end; fail the test, with its output, if it fails."""
    result = subprocess.run(  # noqa: S603 - fixed command lines
        command, cwd=cwd, env=env, timeout=timeout, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def shipped_files() -> list[str]:
    """What the wheel must hold: every module of the package as checked out (subpackages
    and migrations included), and the top-level templates/ and static/ inside it."""
    expected = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "quartapp").rglob("*.py")
        if "__pycache__" not in path.parts
    ]
    for folder in ("templates", "static"):
        expected += [
            f"quartapp/{path.relative_to(ROOT).as_posix()}"
            for path in (ROOT / folder).rglob("*")
            if path.is_file()
        ]
    return sorted(expected)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, by the build backend in this environment."""
    out = tmp_path_factory.mktemp("wheel")
    run(
        [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--disable-pip-version-check", "--wheel-dir", str(out), str(ROOT),
        ],
        timeout=INSTALL_TIMEOUT,
    )  # fmt: skip
    (built,) = out.glob("quartapp-*.whl")
    return built


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """The python of a new virtualenv with the wheel and its dependencies installed."""
    directory = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", str(directory)])
    python = directory / "bin" / "python"
    run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", str(wheel)],
        timeout=INSTALL_TIMEOUT,
    )
    return python


@pytest.fixture
def database_url() -> Iterator[str]:
    """An empty database of its own, next to the test database, dropped afterwards."""
    parts = urlsplit(DATABASE_URL)
    url = parts._replace(path=f"/{database_name(DATABASE_URL)}_installed").geturl()
    drop_database(url)
    yield url
    drop_database(url)


def test_wheel_holds_the_package_templates_and_static_files(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = [name for name in shipped_files() if name not in names]
    assert not missing, f"{wheel.name} lacks {missing}"


def test_installed_copy_migrates_serves_and_sends_mail_as_the_readme_says(
    python: Path, database_url: str, tmp_path: Path
) -> None:
    exported, commands = readme_recipe()
    assert commands == ["migrate", "serve"], commands
    catcher = MailCatcher(tmp_path / "maildir")
    catcher.start()
    port = free_port()
    # This test's value of each variable the recipe exports; a variable it does not know
    # fails the test, to be given a value here.
    values = {
        "QUARTAPP_SECRET_KEY": uuid.uuid4().hex * 2,
        "QUARTAPP_DATABASE_URL": database_url,
        "QUARTAPP_PUBLIC_URL": PUBLIC_URL,
        "QUARTAPP_MAIL_URL": catcher.url,
        "QUARTAPP_COOKIE_SECURE": "false",
    }
    env = {key: value for key, value in os.environ.items() if not key.startswith("QUARTAPP_")}
    env.pop("PYTHONPATH", None)  # only the installed copy may be found
    env.update({name: values[name] for name in exported})
    # Not the app's needs, only this test's: its own Redis keys, no throttle in its way, a
    # cheap bcrypt, and a free port instead of 4300.
    env.update(
        {
            "QUARTAPP_REDIS_URL": REDIS_URL,
            "QUARTAPP_REDIS_PREFIX": new_redis_prefix("wheel"),
            "PORT": str(port),
            **{f"QUARTAPP_{key}": json.dumps(value) for key, value in TEST_SETTINGS.items()},
        }
    )
    # Outside the checkout: only the installed copy is found.
    where = run(
        [str(python), "-c", "import quartapp; print(quartapp.__file__)"], cwd=tmp_path, env=env
    )
    assert Path(where.stdout.strip()).is_relative_to(python.parent.parent)

    migrated = run([str(python), "-m", "quartapp", "migrate"], cwd=tmp_path, env=env)
    # An empty database: the installed copy's migrations are found and applied.
    assert migrated.stdout.startswith("quartapp: applied 0001_initial, ")

    server = launch(
        "installed",
        [str(python), "-m", "quartapp", "serve"],
        port=port,
        env=env,
        log=tmp_path / "server.log",
        cwd=tmp_path,
    )
    base = server.base_url
    browser = Browser()
    try:
        reply = browser.get(f"{base}/")
        assert reply.status == 200, reply.text
        assets = STATIC_URL.findall(reply.text)
        assert any("htmx" in url for url in assets), assets
        assert any(url.endswith(".css") for url in assets), assets
        for url in assets:
            assert browser.get(f"{base}{url}").status == 200, url

        email = f"wheel-{uuid.uuid4().hex[:8]}@example.com"
        reply = browser.sign_up(base, email, PASSWORD)
        assert (reply.status, reply.location) == (303, "/home"), reply.text

        reply = browser.get(f"{base}/home")
        assert reply.status == 200, reply.text
        assert email in reply.text

        # The sign-up's mail, sent by the mail worker that serve runs.
        (mail,) = catcher.wait_for(to(email, VERIFY))
        assert PUBLIC_URL in text_of(mail)
    finally:
        code = server.stop()
        catcher.stop()
        delete_redis_keys(server.redis_prefix)
    assert code == 0, server.output()
