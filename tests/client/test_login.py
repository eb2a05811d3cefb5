"""``trackd.login``, ``trackd login`` and ``trackd init`` against a real server."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trackd
from trackd._wire import settings as _settings
from trackd.cli import credentials as _credentials
from trackd.cli.login import choose_host
from trackd.cli.project_setup import init_directory
from trackd.errors import AuthError, UsageError

from tests._support.server import ServerProcess, running_server

NO_TTY = "api_key not configured (no-tty). call trackd.login(key=...)"


class FakeTerminal(io.StringIO):
    """A stdin that says it is a terminal and answers ``input()`` with ``text``."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("login") / "server") as srv:
        yield srv


@pytest.fixture(scope="module")
def bob_key(server: ServerProcess) -> str:
    """The key of user bob, a member of team vision."""
    with server.client() as client:
        key = client.post("/admin/users", json={"name": "bob"}).json()["api_key"]
        client.post("/admin/teams", json={"name": "vision"}).raise_for_status()
        client.post("/admin/teams/vision/members", json={"user": "bob"}).raise_for_status()
    return str(key)


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def _creds() -> Path:
    return Path(os.environ["TRACKD_CONFIG_DIR"]) / "credentials.json"


def _saved(url: str) -> str | None:
    return json.loads(_creds().read_text())["hosts"].get(url, {}).get("api_key")


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def test_login_with_key_saves_private_credentials(
    server: ServerProcess,
    bob_key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("TRACKD_SILENT")
    assert trackd.login(key=bob_key, host=server.url + "/") is True
    assert f"trackd: logged in to {server.url} as bob" in capsys.readouterr().err
    assert stat.S_IMODE(_creds().stat().st_mode) == 0o600
    assert _saved(server.url) == bob_key
    assert json.loads(_creds().read_text())["default_host"] == server.url


def test_login_with_environment_key(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKD_BASE_URL", server.url)
    monkeypatch.setenv("TRACKD_API_KEY", server.admin_key)
    assert trackd.login() is True
    assert _saved(server.url) == server.admin_key
    assert stat.S_IMODE(_creds().stat().st_mode) == 0o600


def test_wrong_key_is_refused_and_not_saved(server: ServerProcess) -> None:
    with pytest.raises(AuthError, match="the API key is not valid") as info:
        trackd.login(key="trk_wrong", host=server.url)
    assert info.value.status == 401 and server.url in str(info.value)
    assert not _creds().exists()


def test_no_key_and_no_tty(server: ServerProcess) -> None:
    with pytest.raises(UsageError) as info:
        trackd.login(host=server.url)
    assert str(info.value) == NO_TTY


def test_already_logged_in_does_not_ask(server: ServerProcess) -> None:
    trackd.login(key=server.admin_key, host=server.url)
    assert trackd.login(host=server.url) is True  # stdin is no terminal: it did not ask
    assert trackd.login() is True  # the saved default host
    with pytest.raises(UsageError, match=r"no-tty"):
        trackd.login(host=server.url, relogin=True)


def test_prompts_on_a_terminal(
    server: ServerProcess, bob_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeTerminal(""))
    asked: list[str] = []

    def getpass(prompt: str) -> str:
        asked.append(prompt)
        return bob_key + "\n"  # type: ignore[attr-defined, no-any-return]

    monkeypatch.setattr("getpass.getpass", getpass)
    assert trackd.login(host=server.url) is True
    assert len(asked) == 1 and _saved(server.url) == bob_key


def test_host_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = _settings.load()
    assert choose_host(None, settings) == _credentials.DEFAULT_BASE_URL
    _credentials.save_api_key(settings, "http://saved:1", "k")
    assert choose_host(None, settings) == "http://saved:1"
    (tmp_path / "trackd").mkdir()
    (tmp_path / "trackd" / "settings.json").write_text('{"base_url": "http://local:2"}')
    assert choose_host(None, settings) == "http://local:2"
    assert choose_host(None, _settings.load(base_url="http://env:3")) == "http://env:3"
    assert choose_host("http://arg:4/", settings) == "http://arg:4"
    with pytest.raises(UsageError, match="must start with http:// or https://"):
        choose_host("trackd.lab:8080", settings)


def test_login_command(server: ServerProcess, tmp_path: Path) -> None:
    ok = _cli("login", "--key", server.admin_key, "--host", server.url, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert _saved(server.url) == server.admin_key
    bad = _cli("login", "--key", "trk_nope", "--host", server.url, "--relogin", cwd=tmp_path)
    assert bad.returncode == 1
    assert "trackd login: AuthError: login to" in bad.stderr and "not valid" in bad.stderr
    loud = _cli("login", cwd=tmp_path, env={"TRACKD_SILENT": "0"})
    assert loud.returncode == 0 and f"already logged in to {server.url}" in loud.stderr
    none = _cli("login", "--host", "http://127.0.0.1:9", cwd=tmp_path)
    assert none.returncode == 1 and NO_TTY in none.stderr


def test_init_command_writes_directory_settings(
    server: ServerProcess, bob_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = bob_key
    args = ["--host", server.url, "--key", key, "--entity", "vision", "--project", "mnist"]
    result = _cli("init", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "trackd" / "settings.json").read_text())
    assert written == {"base_url": server.url, "entity": "vision", "project": "mnist"}
    monkeypatch.chdir(tmp_path)
    target = _credentials.resolve(_settings.load())
    assert target == _credentials.ServerTarget(server.url, key, "vision", "mnist")


def test_init_without_terminal_needs_flags(server: ServerProcess, tmp_path: Path) -> None:
    no_key = _cli("init", "--host", server.url, "--project", "p", cwd=tmp_path)
    assert no_key.returncode == 1 and "pass --key KEY, set TRACKD_API_KEY" in no_key.stderr
    base = ["init", "--host", server.url, "--key", server.admin_key]
    no_project = _cli(*base, cwd=tmp_path)
    assert no_project.returncode == 1 and "pass --project NAME" in no_project.stderr
    stranger = _cli(*base, "--entity", "vision", "--project", "p", cwd=tmp_path)
    assert stranger.returncode == 1
    assert "entity 'vision' is not one 'admin' may use" in stranger.stderr
    bad_name = _cli(*base, "--project", "no/slash", cwd=tmp_path)
    assert bad_name.returncode == 1 and "project name 'no/slash' is not valid" in bad_name.stderr
    assert not (tmp_path / "trackd" / "settings.json").exists()
    defaults = _cli(*base, "--project", "p", cwd=tmp_path)
    assert defaults.returncode == 0, defaults.stderr
    assert json.loads((tmp_path / "trackd" / "settings.json").read_text())["entity"] == "admin"


def test_init_asks_on_a_terminal(
    server: ServerProcess, bob_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # answers: server URL, entity (by number: bob's entities are bob, vision), project
    monkeypatch.setattr(sys, "stdin", FakeTerminal(f"{server.url}\n2\nnewproj\n"))
    monkeypatch.setattr("getpass.getpass", lambda prompt: bob_key)
    path = init_directory(None, None, None, None, cwd=tmp_path)
    assert json.loads(path.read_text()) == {
        "base_url": server.url,
        "entity": "vision",
        "project": "newproj",
    }
    assert _saved(server.url) == bob_key
