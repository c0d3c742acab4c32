"""The files in deploy/ stay in step with the code they start and configure."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from qistas.cli import main
from qistas.config import Settings

DEPLOY = Path(__file__).parent.parent / "deploy"


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "qistas.service").read_text())
    return unit


def test_the_service_unit_starts_qistas_serve_with_options_it_has() -> None:
    argv = shlex.split(_unit()["Service"]["ExecStart"])
    assert argv[0].endswith("/qistas") and argv[1] == "serve"
    # Click parses the options (an option renamed or removed fails here); --help stops
    # before anything is served.
    done = CliRunner().invoke(main, [*argv[1:], "--help"])
    assert done.exit_code == 0, done.output


def test_the_service_unit_keeps_home_private_and_writable() -> None:
    service = _unit()["Service"]
    home = service["Environment"].split("=", 1)[1]
    assert service["UMask"] == "0077" and service["StateDirectoryMode"] == "0700"
    assert home in service["ReadWritePaths"] and home.endswith("/" + service["StateDirectory"])


def test_nginx_replaces_forwarded_headers_for_the_address_qistas_trusts() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    upstream = re.search(r"server (\S+):(\d+);", conf)
    assert upstream is not None
    unit_argv = shlex.split(_unit()["Service"]["ExecStart"])
    assert unit_argv[unit_argv.index("--host") + 1] == upstream.group(1)
    assert unit_argv[unit_argv.index("--port") + 1] == upstream.group(2)
    # The proxy connects from the loopback address Qistas believes by default.
    assert Settings.model_fields["forwarded_allow_ips"].default == upstream.group(1)
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in conf
    upload = Settings.model_fields["max_upload_bytes"].default
    assert f"client_max_body_size {upload // 2**20}m;" in conf


def test_a_proxy_list_that_is_not_addresses_is_refused_at_start() -> None:
    assert Settings(forwarded_allow_ips="10.0.3.7, 10.0.4.0/24,*").forwarded_allow_ips
    with pytest.raises(ValidationError, match="'proxy.internal' is not an address or network"):
        Settings(forwarded_allow_ips="10.0.3.7,proxy.internal")
