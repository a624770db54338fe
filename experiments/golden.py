"""The golden sets: held-out 1152×768 JPEG uploads and 8-bit PNG masks (0 background, 1 advertising).

Each version is rendered from a seed that the training data never uses (training: seed 1) and
lives in its own directory under ``models/facade-ads/`` as ``{images,masks}/`` with the same base
names. Its identity is the sha256 over the sorted (relative path, file digest) pairs — the
definition ``segserve eval`` and the promoter's verifier use.

- version 1, ``golden/``: 24 images, seed 2, generator 1 — the set the claims of v1–v5 refer to;
- version 2, ``golden-2/``: 100 images, seed 3, generator 2 (facade texture, mounted lettering,
  facade wraps, dusk/sun lighting) — the set of v6 onwards.

A golden set is written once: :func:`ensure` renders a missing set (into a temporary directory,
moved into place when complete) and never rewrites an existing one; :func:`verify` re-renders
into a temporary directory and compares bytes.

    /usr/bin/python3 -m experiments.golden [version]          # digest (renders the set if missing)
    /usr/bin/python3 -m experiments.golden --verify [version]  # re-render and compare byte by byte
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import facades
from .dataset import ROOT

MODELS = ROOT.parent / "models" / "facade-ads"


@dataclass(frozen=True)
class GoldenSet:
    version: int
    dir: Path
    seed: int
    count: int
    generator: int
    sha256: str  # the digest of the committed set (what every model.json measured on it records)
    quality: int = 93

    @property
    def name(self) -> str:
        return self.dir.name

    def image_name(self, i: int) -> str:
        return f"facade-{i + 1:03d}"


SETS = {
    1: GoldenSet(1, MODELS / "golden", seed=2, count=24, generator=1,
                 sha256="6d3d57fc34a8b2e7017f869268b4ce988ba015514b826d16010a1ea069c0c52f"),
    2: GoldenSet(2, MODELS / "golden-2", seed=3, count=100, generator=2,
                 sha256="f83b7c3585dba0b5dd35b55815b3c76d8cbc7bb94877d2506addbf4ba87ceb74"),
}
CURRENT = SETS[2]  # the set new versions are measured on
GOLDEN = SETS[1].dir  # the set of the bundled v1–v5 (kept for their claims and tests)


def render_item(gs: GoldenSet, i: int) -> tuple[bytes, bytes]:
    """The JPEG and PNG bytes of image i of a golden set."""
    import io
    img, mask = facades.render(gs.seed * 100003 + i, generator=gs.generator)
    a, b = io.BytesIO(), io.BytesIO()
    img.save(a, "JPEG", quality=gs.quality, optimize=True)
    Image.fromarray(mask.astype(np.uint8), "L").save(b, "PNG", optimize=True)
    return a.getvalue(), b.getvalue()


def _write(gs: GoldenSet, out: Path, indices) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for i in indices:
        jpg, png = render_item(gs, i)
        (out / "images" / f"{gs.image_name(i)}.jpg").write_bytes(jpg)
        (out / "masks" / f"{gs.image_name(i)}.png").write_bytes(png)


def ensure(gs: GoldenSet = CURRENT, log=print) -> str:
    """The set's digest; renders the set first when its directory does not exist. An existing set
    is never rewritten (its digest is in every model.json measured on it); one whose digest is
    not the recorded one is an error, not something to repair."""
    if gs.dir.exists():
        d = digest(gs.dir)
        if d != gs.sha256:
            raise RuntimeError(f"{gs.dir}: digest {d} is not the recorded {gs.sha256}; "
                               f"restore it from git (`git checkout -- {gs.dir}`) — it is never re-rendered in place")
        return d
    facades.check_fonts()
    gs.dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{gs.name}-", dir=gs.dir.parent))
    try:
        _write(gs, tmp, range(gs.count))
        os.rename(tmp, gs.dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"golden set {gs.name}: rendered {gs.count} images")
    return digest(gs.dir)


def verify(gs: GoldenSet, indices=None) -> list[str]:
    """Re-render (all or some images of) a set in a temporary directory; the files that differ."""
    facades.check_fonts()
    idx = range(gs.count) if indices is None else indices
    diff = []
    with tempfile.TemporaryDirectory() as tmp:
        _write(gs, Path(tmp), idx)
        for i in idx:
            for sub, ext in (("images", "jpg"), ("masks", "png")):
                rel = f"{sub}/{gs.image_name(i)}.{ext}"
                have = gs.dir / rel
                if not have.exists() or have.read_bytes() != (Path(tmp) / rel).read_bytes():
                    diff.append(rel)
    return diff


def digest(root: Path = GOLDEN) -> str:
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\n")
    return h.hexdigest()


def by_dir(path: Path) -> GoldenSet | None:
    for gs in SETS.values():
        if gs.dir.resolve() == Path(path).resolve():
            return gs
    return None


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--verify":
        gs = SETS[int(args[1]) if len(args) > 1 else CURRENT.version]
        bad = verify(gs)
        print(f"{gs.name}: {'byte-identical' if not bad else f'{len(bad)} files differ: ' + ', '.join(bad[:10])}")
        sys.exit(1 if bad else 0)
    print(ensure(SETS[int(args[0]) if args else CURRENT.version]))
