"""`mimic assets download unitree_g1` against a local HTTP server serving the shared robots folder."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mimictools.cli.app import app

runner = CliRunner()


@pytest.fixture()
def robots_server(shared_dir: Path):
    root = shared_dir / "robots"
    if not (root / "unitree_g1" / "g1.xml").is_file():
        pytest.skip(f"{root} has no unitree_g1 (shared robot data)")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


def test_download_g1_loads_and_matches_the_source(robots_server, tmp_path: Path):
    url, root = robots_server
    res = runner.invoke(app, ["assets", "download", "unitree_g1", "--to", str(tmp_path), "--base-url", url])
    assert res.exit_code == 0, res.output
    got = tmp_path / "unitree_g1"
    import mujoco

    from mimictools.character.mjcf import load_character

    # exactly the meshes the MJCFs name (the source folder also holds meshes of other G1 variants)
    nmesh = mujoco.MjModel.from_xml_path(str(root / "unitree_g1" / "g1.xml")).nmesh
    assert len(list((got / "assets").glob("*.STL"))) == nmesh > 30
    for name in ("g1.xml", "scene_mjx.xml", "LICENSE", "assets/pelvis.STL"):
        assert (got / name).read_bytes() == (root / "unitree_g1" / name).read_bytes(), name
    assert mujoco.MjModel.from_xml_path(str(got / "scene.xml")).nmesh == nmesh  # loads where it was put
    assert load_character(got / "scene.xml").num_dofs == 29


def test_unknown_asset_and_unreachable_server_are_one_line(tmp_path: Path):
    res = runner.invoke(app, ["assets", "download", "nao", "--to", str(tmp_path)])
    assert res.exit_code == 2 and "unknown asset 'nao'; available: unitree_g1" in " ".join(res.output.split())
    res = runner.invoke(
        app, ["assets", "download", "unitree_g1", "--to", str(tmp_path), "--base-url", "http://127.0.0.1:9/"]
    )
    assert res.exit_code == 2 and "127.0.0.1:9" in res.output and "Traceback" not in res.output
