"""Smoke test of the frozen app (``make package`` runs it):

    python packaging/smoke.py build/dist/gridman [--deb build/gridman_X_amd64.deb]

Runs the bundle's own programs, never the source: ``--version``; ``db check`` on a copy of the
demo; one import (a boundary file, which needs shapely, PROJ's data and pyshp inside the bundle);
the GUI started offscreen in Chinese and in English, alive after a few seconds with nothing on
stderr about a missing module or file. With ``--deb`` (as root, with dpkg) the package is also
installed, run from /usr/bin and /opt, and removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "sample_db" / "gridman-demo.sqlite"
PASSWORD = "gridman123"  # the demo's accounts
BAD = ("Traceback", "ModuleNotFoundError", "No such file", "FileNotFoundError", "ImportError")


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]
    print(f"$ {' '.join(cmd)}  → {r.returncode}")
    if r.returncode != 0 or any(b in r.stderr for b in BAD):
        print(r.stdout[-2000:], r.stderr[-4000:], sep="\n")
        raise SystemExit(f"smoke test failed: {' '.join(cmd)}")
    return r


def sign_in_args(cli: str, db: Path, tmp: Path) -> list[str]:
    """Sign in as the demo's administrator the way this build's CLI asks for it."""
    help_text = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=120).stdout
    if "--password-file" in help_text:
        pw = tmp / "pw"
        pw.write_text(PASSWORD + "\n", encoding="utf-8")
        pw.chmod(0o600)
        return ["--db", str(db), "--as", "admin", "--password-file", str(pw)]
    return ["--db", str(db), "--as", "admin"]


def boundary_file(tmp: Path) -> Path:
    f = tmp / "districts.geojson"
    feats = [{"type": "Feature", "properties": {"adcode": 340199, "name": "测试区", "level": "district",
                                                "parent": {"adcode": 340100}},
              "geometry": {"type": "Polygon", "coordinates": [[[117.0, 31.7], [117.1, 31.7], [117.1, 31.8],
                                                               [117.0, 31.8], [117.0, 31.7]]]}}]
    f.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False), encoding="utf-8")
    return f


def gui_starts(gui: str, db: Path, lang: str, env: dict[str, str]) -> None:
    p = subprocess.Popen([gui, "--db", str(db), "--lang", lang], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    alive = p.poll() is None
    p.terminate()
    try:
        _out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        _out, err = p.communicate()
    print(f"$ {gui} --lang {lang}  → {'running after 8 s' if alive else f'exited {p.returncode}'}")
    if not alive or any(b in err for b in BAD):
        print(err[-4000:])
        raise SystemExit(f"smoke test failed: the GUI ({lang}) did not start")


def smoke(dist: Path, cli: str, gui: str) -> None:
    with tempfile.TemporaryDirectory(prefix="gridman-smoke-") as t:
        tmp = Path(t)
        env = {**os.environ, "GRIDMAN_DATA_DIR": str(tmp / "data"), "QT_QPA_PLATFORM": "offscreen"}
        env.pop("GRIDMAN_DB", None)
        db = tmp / "demo.sqlite"
        shutil.copyfile(DEMO, db)
        v = run([cli, "--version"], env=env)
        assert v.stdout.startswith("gridman "), v.stdout
        out = json.loads(run([cli, "--db", str(db), "db", "check", "--json"], env=env).stdout)
        print("   db check:", {k: out[k] for k in list(out)[:4]})
        res = json.loads(run([cli, *sign_in_args(cli, db, tmp), "areas", "import", str(boundary_file(tmp)),
                              "--level", "district", "--json"], env=env).stdout)
        assert res["created"] == ["340199"], res
        run([cli, "--lang", "en", "--help"], env=env)
        for lang in ("zh_CN", "en"):
            gui_starts(gui, db, lang, env)


def deb(path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("dpkg") is None:
        print("--deb: not root or no dpkg here; the package was built but not installed")
        return
    run(["dpkg", "-i", str(path)])
    try:
        assert Path("/usr/share/applications/gridman.desktop").exists()
        assert Path("/usr/share/icons/hicolor/256x256/apps/gridman.png").exists()
        smoke(Path("/opt/gridman"), "/usr/bin/gridman", "/opt/gridman/gridman")
    finally:
        run(["dpkg", "-r", "gridman"])
    assert not Path("/opt/gridman/gridman").exists(), "dpkg -r left the program behind"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dist", type=Path)
    ap.add_argument("--deb", type=Path)
    a = ap.parse_args()
    smoke(a.dist, str(a.dist / "gridman-cli"), str(a.dist / "gridman"))
    if a.deb:
        deb(a.deb)
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
