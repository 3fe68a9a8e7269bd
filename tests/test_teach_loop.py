"""Teach it your door, the whole loop on generated images, through the kit's commands and a real ``serve`` process.

``watch --review-dir`` plays a clip (a scene with red shapes passing) → the review queue → every pending frame
answered through ``serve``'s ``/api/review`` as a user would (by what the frame shows) → ``/api/review/export.zip``
→ ``python -m train --init-from RUN --data door=EXPORT`` → ``python -m convert gate-device`` → ``python -m
edge_runner deploy`` to the running ``serve`` (which then answers with the new model, and whose queue names it) →
``deploy --rollback``. The tiny random backbone checks the mechanics, not learning (conftest ``tiny_weights``); what
one round of the loop does to a real model is measured by tests/benchmarks/bench_teach.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, tiny_background_run, write_clip
from deploy_helpers import TOKEN, Serve, deploy, http

pytest.importorskip("tensorflow", reason="training needs TensorFlow (pip install .[train])")
pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
pytest.importorskip("cv2", reason="the clip is written with OpenCV (pip install .[camera])")

pytestmark = pytest.mark.slow

SCENE, PET = (200, 120, 50), (220, 40, 40)  # an orange doormat; a red "pet" (the run's class "red")


@pytest.fixture(scope="module")
def device(tmp_path_factory, tiny_weights):
    """``{"run", "model"}``: a tiny run (red, green vs a yellow background folder) and its int8 export, the device's model."""
    from convert.cli import main as convert_main

    root = tmp_path_factory.mktemp("teach")
    tiny_background_run(root, tiny_weights, per_class=10, seed=700, epochs=2)
    assert convert_main(["export", str(root / "run"), "--out", str(root / "tflite"), "--variants", "int8", "--quiet"]) in (0, 1)
    return {"run": root / "run", "model": next((root / "tflite").glob("*_int8.tflite"))}


def watch(clip: Path, model: Path, review: Path, deploy_dir: Path) -> list[dict]:
    """``watch``'s JSON events for every frame of ``clip``; the queue keeps a quiet frame every 2 s of video."""
    done = subprocess.run(
        [sys.executable, "-m", "edge_runner", "watch", "--camera", str(clip), "--model", str(model), "--json",
         "--review-dir", str(review), "--review-quiet-per-hour", "1800", "--deploy-dir", str(deploy_dir)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def shows_pet(jpeg: bytes) -> bool:
    """What a user sees: the red shape, or the orange scene."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), np.float32).reshape(-1, 3).mean(axis=0)
    return float(np.abs(pixels - PET).sum()) < float(np.abs(pixels - SCENE).sum())


def test_review_export_retrain_gate_deploy_and_roll_back(device, tmp_path):
    clip = write_clip(tmp_path / "door.avi", [SCENE] * 40 + [PET] * 20 + [SCENE] * 40, fps=10.0)
    review, deployed = tmp_path / "review", tmp_path / "deployed"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    serve = Serve(["--model", device["model"], "--token-file", token_file, "--review-dir", review,
                   "--deploy-dir", deployed, "--interpreters", "1"], cwd=tmp_path)
    try:
        before = serve.get("/api/model")[2]["sha256"]
        watch(clip, device["model"], review, deployed)

        # Review every pending frame through the API, by what it shows; then the export, as the page's download.
        status, _, listing = serve.get("/api/review?status=pending&limit=200")
        assert status == 200 and listing["records"], listing
        assert {r["model_sha256"] for r in listing["records"]} == {before}
        for record in listing["records"]:
            jpeg = _get_bytes(serve, f"/api/review/{record['id']}.jpg")
            label = "red" if shows_pet(jpeg) else "nothing"
            status, _, answer = http(f"{serve.url}/api/review/{record['id']}", data=json.dumps({"label": label}).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            assert status == 200 and answer["review"]["label"] == label
        assert serve.get("/api/review?status=pending")[2]["records"] == []
        export = tmp_path / "export"
        with zipfile.ZipFile(io.BytesIO(_get_bytes(serve, "/api/review/export.zip"))) as archive:
            archive.extractall(export)
        manifest = json.loads((export / "manifest.json").read_text())
        assert len(manifest["frames"]) == len(listing["records"])
        assert {f["label"] for f in manifest["frames"]} <= {"red", "other"} and (export / "other").is_dir()

        # Retrain from the run with the export as one more source, then gate against the device's model.
        from convert.cli import main as convert_main
        from train.cli import main as train_main

        assert train_main(["--init-from", str(device["run"]), "--data", f"door={export}", "--out", str(tmp_path / "new"),
                           "--fine-tune-epochs", "1", "--quiet"]) == 0
        split = json.loads((tmp_path / "new" / "split.json").read_text())
        door = [p for part in ("train", "validation") for p in split[part] if p.get("source") == "door"]
        assert len(door) == len(manifest["frames"])
        # --min-fixed 0: the tiny backbone cannot be asked to learn (see the module doc); the gate's counts are checked.
        code = convert_main(["gate-device", str(tmp_path / "new"), "--device", str(device["model"]), "--reviewed",
                             str(export), "--out", str(tmp_path / "gate"), "--min-fixed", "0", "--quiet"])
        report = json.loads((tmp_path / "gate" / "report.json").read_text())
        assert code in (0, 1) and report["reviewed"]["frames"] == len(manifest["frames"]), report["reviewed"]
        new_model = Path(report["new_model"]["path"])

        # Deploy to the running serve: it answers with the new model, and the queue's new records name it.
        done = deploy(new_model, "--url", serve.url, "--json", token_file=token_file)
        assert done.returncode == 0, done.stderr
        after = json.loads(done.stdout)["sha256"]
        assert after != before and serve.get("/api/model")[2]["sha256"] == after
        watch(clip, device["model"], review, deployed)  # --deploy-dir: watch starts on the deployed model
        fresh = serve.get("/api/review?status=pending&limit=200")[2]["records"]
        assert fresh and {r["model_sha256"] for r in fresh} == {after}

        # One command rolls back; the folder names the previous model again.
        done = deploy("--rollback", "--url", serve.url, token_file=token_file)
        assert done.returncode == 0, done.stderr
        assert serve.get("/api/model")[2]["sha256"] == before
        assert json.loads((deployed / "current.json").read_text())["current"]["sha256"] == before
    finally:
        serve.stop()


def _get_bytes(serve: Serve, path: str) -> bytes:
    import urllib.request

    request = urllib.request.Request(serve.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()
