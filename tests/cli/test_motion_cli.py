"""`mimic motion inspect|convert|download`: exit codes 0 / 1 / 2, --json, conversion, local-only downloads."""

from __future__ import annotations

import functools
import http.server
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from mimictools.cli.app import app
from mimictools.motion import load_motion

runner = CliRunner()


@pytest.fixture(scope="module")
def mk(shared_dir):
    root = shared_dir / "mimickit"
    d = root / "data"
    return {
        "root": root,
        "xml": d / "assets/humanoid/humanoid.xml",
        "motions": d / "motions/humanoid",
        "walk": d / "motions/humanoid/humanoid_walk.pkl",
        "run": d / "motions/humanoid/humanoid_run.pkl",
        "spinkick": d / "motions/humanoid/humanoid_spinkick.pkl",
        "dataset": d / "datasets/dataset_humanoid_locomotion.yaml",
        "ndarray": root / "format_variants/ndarray_float32/humanoid_spinkick.pkl",
        "dm": shared_dir / "deepmimic",
    }


def _json(result):
    assert result.stdout.lstrip().startswith("{"), result.stdout + result.stderr
    return json.loads(result.stdout)


def _inspect(mk, *args):
    return runner.invoke(app, ["motion", "inspect", *map(str, args), "--char", str(mk["xml"])])


# ---- inspect -------------------------------------------------------------------------------------------------
def test_inspect_one_clip_rich(mk):
    r = _inspect(mk, mk["walk"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    for text in (
        "mimickit-dict-list",
        "120",
        "125",
        "1.0333 s",
        "wrap",
        "neck",
        "nonfinite",
        "NaN at frames 0-124",
    ):
        assert text in out, text


def test_inspect_default_character_is_bundled(mk):
    r = runner.invoke(app, ["motion", "inspect", str(mk["run"]), "--json"])
    assert r.exit_code == 0, r.output
    doc = _json(r)
    assert doc["character"].endswith("humanoid.xml") and doc["clips"][0]["columns"] == 34


def test_inspect_everything_json(mk):
    r = _inspect(mk, mk["root"], "--json")
    assert r.exit_code == 0, r.stderr
    doc = _json(r)
    clips = {c["display_name"]: c for c in doc["clips"]}
    assert (
        len(clips) == len(list(mk["root"].rglob("*.pkl"))) and not doc["errors"]
    )  # LICENSE.txt etc. skipped
    walk = clips["data/motions/humanoid/humanoid_walk.pkl"]
    (nan,) = [f for f in walk["faults"] if f["kind"] == "nonfinite"]
    assert nan["joint"] == "neck" and nan["frames"] == list(range(125))
    assert [j for j in walk["joints"] if j["name"] == "neck"][0]["min"] == [None, None, None]
    spin = clips["data/motions/humanoid/humanoid_spinkick.pkl"]
    assert spin["fps"] == 60.0 and spin["num_frames"] == 78 and spin["duration_s"] == pytest.approx(77 / 60)
    assert spin["seam"]["max_joint_diff_deg"] > 30  # DATA.md: spinkick's wrap seam is not matched
    climb = clips["data/motions/humanoid/humanoid_climbing_up_down.pkl"]
    assert climb["loop_mode"] == "clamp" and climb["seam"] is None
    assert doc["totals"]["clips"] == len(clips) and doc["totals"]["faults"] > 0
    assert doc["exit_code"] == 0
    # --strict: the same data, but faults make it exit 1
    r = _inspect(mk, mk["walk"], "--strict")
    assert r.exit_code == 1
    r = _inspect(mk, mk["motions"] / "humanoid_jog.pkl", "--strict", "--json")
    assert r.exit_code == 0 and not _json(r)["clips"][0]["faults"]


def test_inspect_dataset_and_summary_table(mk):
    r = _inspect(mk, mk["dataset"])
    assert r.exit_code == 0, r.stderr
    assert "56 clips" in r.stdout and "weight" in r.stdout and "total" in r.stdout
    r = _inspect(mk, mk["dataset"], "--json")
    doc = _json(r)
    assert len(doc["clips"]) == 56 and doc["clips"][0]["weight"] == 3.0


def test_inspect_deepmimic_txt_reports_non_unit(mk):
    r = _inspect(mk, mk["dm"] / "motions" / "humanoid3d_kick.txt", "--json")
    assert r.exit_code == 0, r.output
    clip = _json(r)["clips"][0]
    assert clip["variant"] == "deepmimic-txt"
    assert any(f["kind"] == "non_unit_quaternion" and "right_hip" in f["message"] for f in clip["faults"])


def _bad_files(tmp_path, mk):
    good = {"loop_mode": 1, "fps": 30, "frames": [[0.0] * 34] * 3}
    files = {}
    data = mk["run"].read_bytes()
    files["truncated"] = (data[: len(data) // 2], "truncated pickle")
    files["columns"] = (
        pickle.dumps(dict(good, frames=[[0.0] * 33] * 3)),
        "has 33 columns, character humanoid.xml expects 34",
    )
    files["empty"] = (pickle.dumps(dict(good, frames=[])), "empty clip")
    files["fps0"] = (pickle.dumps(dict(good, fps=0)), "fps is 0.0")
    files["fpsneg"] = (pickle.dumps(dict(good, fps=-5.0)), "fps is -5.0")
    out = {}
    for name, (payload, message) in files.items():
        p = tmp_path / f"{name}.pkl"
        p.write_bytes(payload)
        out[name] = (p, message)
    return out


def test_inspect_bad_files_exit_2_with_one_line_errors(tmp_path, mk):
    bad = _bad_files(tmp_path, mk)
    for _name, (path, message) in bad.items():
        r = _inspect(mk, path)
        assert r.exit_code == 2, (path, r.output)
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and str(path) in lines[0] and message in lines[0], r.stderr
    # mixed: the good clip is still reported, the bad ones are named
    r = _inspect(mk, mk["run"], *[p for p, _ in bad.values()], "--json")
    assert r.exit_code == 2
    doc = _json(r)
    assert [c["name"] for c in doc["clips"]] == ["humanoid_run.pkl"]
    assert sorted(e["path"] for e in doc["errors"]) == sorted(str(p) for p, _ in bad.values())
    r = _inspect(mk, tmp_path / "nope.pkl")
    assert r.exit_code == 2 and "no such file or folder" in r.stderr


def test_inspect_malicious_pickle(tmp_path, mk):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps({"loop_mode": 0, "fps": 30, "frames": Evil()}))
    r = _inspect(mk, p)
    assert r.exit_code == 2 and "refusing to load global" in r.stderr and str(p) in r.stderr
    assert not marker.exists()


def test_unknown_character_is_exit_2(tmp_path, mk):
    r = runner.invoke(app, ["motion", "inspect", str(mk["run"]), "--char", str(tmp_path / "none.xml")])
    assert r.exit_code == 2


# ---- convert -------------------------------------------------------------------------------------------------
def test_convert_deepmimic_txt(tmp_path, mk):
    out = tmp_path / "spinkick.pkl"
    r = runner.invoke(
        app, ["motion", "convert", str(mk["dm"] / "motions/humanoid3d_spinkick.txt"), "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "78 frames at 60 fps" in r.stdout
    ours, ref = load_motion(out), load_motion(mk["spinkick"])
    assert ours.variant == "mimickit-dict-list" and (ours.fps, ours.loop_mode) == (60.0, 1)
    assert np.abs(ours.frames - ref.frames).max() < 1e-4
    raw = pickle.loads(out.read_bytes())
    assert type(raw["frames"]) is list and raw["fps"] == 60 and raw["loop_mode"] == 1


def test_convert_warns_about_non_unit(tmp_path, mk):
    out = tmp_path / "kick.pkl"
    r = runner.invoke(
        app, ["motion", "convert", str(mk["dm"] / "motions/humanoid3d_kick.txt"), "-o", str(out)]
    )
    assert r.exit_code == 0 and "right_hip quaternion has norm" in r.stderr


def test_convert_normalises_old_variant_and_overrides(tmp_path, mk):
    out = tmp_path / "n.pkl"
    r = runner.invoke(app, ["motion", "convert", str(mk["ndarray"]), "-o", str(out), "--loop", "clamp"])
    assert r.exit_code == 0, r.output
    m = load_motion(out)
    assert m.variant == "mimickit-dict-list" and m.loop_mode == 0
    np.testing.assert_array_equal(m.frames, load_motion(mk["ndarray"]).frames)
    # resample 60 -> 30 fps: same duration, every other frame (exactly, up to float32 round trips)
    r = runner.invoke(app, ["motion", "convert", str(mk["spinkick"]), "-o", str(out), "--fps", "30"])
    assert r.exit_code == 0, r.output
    m30, m60 = load_motion(out), load_motion(mk["spinkick"])
    assert m30.fps == 30.0 and m30.num_frames == 39 and m30.length_s == pytest.approx(38 / 30)
    np.testing.assert_allclose(m30.frames[:, :3], m60.frames[::2][:39, :3], atol=1e-5)
    np.testing.assert_allclose(m30.frames[:, 15], m60.frames[::2][:39, 15], atol=1e-5)


def test_convert_bad_input_exit_2(tmp_path, mk):
    p = tmp_path / "empty.pkl"
    p.write_bytes(pickle.dumps({"loop_mode": 1, "fps": 30, "frames": []}))
    r = runner.invoke(app, ["motion", "convert", str(p), "-o", str(tmp_path / "o.pkl")])
    assert r.exit_code == 2 and "empty clip" in r.stderr and not (tmp_path / "o.pkl").exists()


# ---- download (local server only; never the internet) ---------------------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def local_server(mk):
    handler = functools.partial(_QuietHandler, directory=str(mk["dm"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_from_local_server(tmp_path, mk, local_server):
    to = tmp_path / "clips"
    r = runner.invoke(
        app,
        [
            "motion",
            "download",
            "deepmimic",
            "--to",
            str(to),
            "--base-url",
            local_server + "/motions/",
            "--clips",
            "spinkick, run",
        ],
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in to.iterdir()) == [
        "humanoid3d_run.txt",
        "humanoid3d_spinkick.txt",
        "humanoid_run.pkl",
        "humanoid_spinkick.pkl",
    ]
    assert (to / "humanoid3d_run.txt").read_bytes() == (mk["dm"] / "motions/humanoid3d_run.txt").read_bytes()
    for name in ("spinkick", "run"):
        got = load_motion(to / f"humanoid_{name}.pkl")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = load_motion(mk["dm"] / f"motions/humanoid3d_{name}.txt")
        np.testing.assert_array_equal(got.frames, want.frames)
        assert got.fps == want.fps and got.loop_mode == want.loop_mode


def test_download_404_names_the_url(tmp_path, local_server):
    base = local_server + "/motions"
    r = runner.invoke(
        app,
        [
            "motion",
            "download",
            "deepmimic",
            "--to",
            str(tmp_path),
            "--base-url",
            base,
            "--clips",
            "run,backflip",
        ],
    )
    assert r.exit_code == 2
    assert "HTTP 404" in r.stderr and f"{base}/humanoid3d_backflip.txt" in r.stderr
    assert (tmp_path / "humanoid_run.pkl").exists() and not (tmp_path / "humanoid_backflip.pkl").exists()


def test_download_connection_refused_names_the_url(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    base = f"http://127.0.0.1:{port}/motions"
    r = runner.invoke(
        app, ["motion", "download", "deepmimic", "--to", str(tmp_path), "--base-url", base, "--clips", "run"]
    )
    assert r.exit_code == 2
    assert "connection refused" in r.stderr and f"{base}/humanoid3d_run.txt" in r.stderr


def test_download_rejects_path_like_clip_names(tmp_path):
    r = runner.invoke(
        app, ["motion", "download", "deepmimic", "--to", str(tmp_path), "--clips", "../etc/passwd"]
    )
    assert r.exit_code == 2 and "is not a clip name" in r.stderr


def test_motion_help_subprocess_is_light():
    out = subprocess.run(
        [sys.executable, "-m", "mimictools", "motion", "--help"], capture_output=True, text=True, check=True
    )
    for cmd in ("inspect", "convert", "download"):
        assert cmd in out.stdout
