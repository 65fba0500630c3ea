"""``servesim dashboard``: the Streamlit command it runs, and its one-line errors."""
import importlib.util
import subprocess
import sys

from simulator.cli import main
from simulator.commands import dashboard_cmd
from simulator.commands.dashboard_cmd import APP, streamlit_command


def test_command_serves_the_packaged_entry_script():
    cmd = streamlit_command(8600, headless=True)
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert cmd[4] == str(APP) and APP.is_file() and APP.parent.name == "dashboard"
    assert cmd[cmd.index("--server.port") + 1] == "8600"
    assert cmd[cmd.index("--server.headless") + 1] == "true"


def test_run_hands_the_command_to_streamlit(monkeypatch):
    seen = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: seen.append(cmd) or 0)
    assert main(["dashboard", "--port", "8700"]) == 0
    assert seen == [streamlit_command(8700, headless=False)]


def test_bad_port_is_one_line(capsys):
    assert main(["dashboard", "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["servesim: error: --port: got 70000; allowed: 1 to 65535"]


def test_without_streamlit_says_which_extra(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(dashboard_cmd.importlib.util, "find_spec",
                        lambda name, *a: None if name == "streamlit" else real(name, *a))
    assert main(["dashboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'servesim[app]'" in err[0]
