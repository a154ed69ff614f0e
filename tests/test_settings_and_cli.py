"""Settings parsing and the `clinserve` front door."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from cli.main import main
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_workers_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINSERVE_WORKERS", "http://gpu-1:8000, http://gpu-2:8000/")
    monkeypatch.setenv("CLINSERVE_LIMITS__MAX_IN_FLIGHT", "12")
    monkeypatch.setenv("CLINSERVE_LOCAL_WORKER__EXTRA_ARGS", '["--swap-space", "1"]')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.worker_urls == ["http://gpu-1:8000", "http://gpu-2:8000"]
    assert settings.limits.max_in_flight == 12
    assert settings.local_worker.extra_args == ["--swap-space", "1"]


def test_bad_settings_are_refused_with_their_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINSERVE_LIMITS__MAX_IN_FLIGHT", "0")
    with pytest.raises(ValidationError, match="max_in_flight"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.delenv("CLINSERVE_LIMITS__MAX_IN_FLIGHT")
    with pytest.raises(ValidationError, match="workers"):
        Settings(_env_file=None, workers=["ftp://x"])  # type: ignore[call-arg]


def test_serve_refuses_invalid_settings_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--worker", "not a url"]) == 2
    err = capsys.readouterr().err
    assert "invalid settings" in err and "Traceback" not in err


def test_serve_without_a_pulled_model_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLINSERVE_MODEL__PATH", raising=False)
    assert main(["serve", "--data-dir", str(tmp_path)]) == 1
    assert "clinserve model pull" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2


def test_serve_never_imports_torch_or_vllm() -> None:
    """`clinserve serve` must start fast and light: the worker runs models, not the gateway."""
    probe = (
        "import sys, cli.main, server.cli, server.app, server.serve, weights.location\n"
        "heavy = [m for m in ('torch', 'vllm', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True)
