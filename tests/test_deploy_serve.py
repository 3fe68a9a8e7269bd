"""Deploying to a REAL ``python -m edge_runner serve --deploy-dir DIR`` process, with ``python -m edge_runner deploy``.

Two colour models that answer a red photo differently (``red`` vs ``cat``, see deploy_helpers.py): the upload
switches the answers without a restart, a refused upload leaves the old model answering, the rollback brings
it back, a restart serves the deployed model, and with ``--camera`` the frames keep coming across the swap.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import REPO, write_clip
from deploy_helpers import RED, TOKEN, Serve, deploy, deploy_models

pytest.importorskip("flask", reason="the web server needs Flask (pip install .[serve])")
pytest.importorskip("waitress", reason="the web server needs waitress (pip install .[serve])")

def test_deploy_rollback_refusals_and_restart_with_a_real_serve(setup, tmp_path):
    models, token_file, folder = setup
    serve = Serve(["--model", models["colours"], "--deploy-dir", folder, "--token-file", token_file, "--max-model-mb", "1"], tmp_path)
    try:
        first = serve.get("/api/model")[2]
        assert first["labels"] == ["red", "green", "blue"] and first["deployed"]["serving"] is None
        assert serve.classify() == "red"

        done = deploy(models["pets"], "--url", serve.url, "--json", token_file=token_file)
        assert done.returncode == 0, done.stderr
        import json

        answer = json.loads(done.stdout)
        assert answer["sha256"] != first["sha256"] and answer["previous_sha256"] == first["sha256"] and answer["labels_changed"]
        assert answer["elapsed_s"] < 10
        now = serve.get("/api/model")[2]
        assert now["sha256"] == answer["sha256"] and now["deployed"]["current"]["sha256"] == answer["sha256"]
        assert serve.classify() == "cat"
        assert any(f"now serving pets sha256 {answer['sha256']}; labels now cat, dog, other" in line for line in serve.lines)

        corrupt = tmp_path / "corrupt.tflite"
        corrupt.write_bytes(models["pets"].read_bytes()[:3000])
        for bad, words in ((corrupt, "422: refused"), (models["bare"], "no input contract embedded")):
            refused = deploy(bad, "--url", serve.url, token_file=token_file)
            assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and words in refused.stderr, refused.stderr
            assert refused.stderr.startswith("edge_runner deploy: error: ") and "running model is unchanged" in refused.stderr
            assert serve.classify() == "cat"
        big = tmp_path / "big.tflite"
        big.write_bytes(models["pets"].read_bytes() + b"\0" * (1_200_000))
        too_big = deploy(big, "--url", serve.url, token_file=token_file)
        assert too_big.returncode == 1 and "413" in too_big.stderr and "--max-model-mb" in too_big.stderr, too_big.stderr
        no_token = deploy(models["swapped"], "--url", serve.url)
        assert no_token.returncode == 1 and "401" in no_token.stderr and "--token-file" in no_token.stderr
        assert serve.get("/api/model", token=None)[0] == 401
        assert serve.classify() == "cat"

        back = deploy("--rollback", "--url", serve.url, env_token=TOKEN)
        assert back.returncode == 0 and f"rolled back to sha256 {first['sha256']}" in back.stdout, back.stderr
        assert serve.classify() == "red" and serve.get("/api/model")[2]["sha256"] == first["sha256"]
        assert deploy(models["swapped"], "--url", serve.url, token_file=token_file).returncode == 0
        assert serve.classify() == "green"  # same labels, other answers
        swapped = serve.get("/api/model")[2]["sha256"]
    finally:
        serve.stop()
    assert serve.process.returncode == 0
    restarted = Serve(["--model", models["pets"], "--deploy-dir", folder, "--token-file", token_file], tmp_path)
    try:
        assert restarted.get("/api/model")[2]["sha256"] == swapped and restarted.classify() == "green"
        assert any("serving the deployed model" in line and swapped in line for line in restarted.lines)
    finally:
        restarted.stop()
    unreachable = deploy(models["pets"], "--url", restarted.url, token_file=token_file)
    assert unreachable.returncode == 1 and "cannot reach the device" in unreachable.stderr


@pytest.fixture
def setup(tmp_path):
    models = deploy_models(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    return models, token_file, tmp_path / "deployed"


def test_camera_frames_keep_flowing_across_a_swap_and_watch_follows(setup, tmp_path):
    pytest.importorskip("cv2", reason="the clip is read with OpenCV (pip install .[camera])")
    models, token_file, folder = setup
    clip = write_clip(tmp_path / "red.avi", [RED] * 100, fps=10)
    serve = Serve(["--model", models["colours"], "--deploy-dir", folder, "--token-file", token_file,
                   "--camera", clip, "--camera-fps", "10"], tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    long_clip = write_clip(tmp_path / "long.avi", [RED] * 400, fps=20)
    watch = subprocess.Popen([sys.executable, "-m", "edge_runner", "watch", "--camera", str(long_clip), "--realtime",
                              "--deploy-dir", str(folder), "--model", str(models["colours"])],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        samples: list[tuple[float, int, str]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                status, _, state = serve.get("/api/camera")
                if status == 200:
                    samples.append((time.monotonic(), state["frames"], state["model_sha256"]))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        time.sleep(3)
        started = time.monotonic()
        done = deploy(models["pets"], "--url", serve.url, token_file=token_file)
        assert done.returncode == 0, done.stderr
        deployed_in = time.monotonic() - started
        time.sleep(3)
        stop.set()
        sampler.join()
        changes = [t for (t, frames, _), (_, before, _) in zip(samples[1:], samples) if frames > before]
        gaps = [b - a for a, b in zip(changes, changes[1:])]
        shas = [s for _, _, s in samples]
        assert len(set(shas)) == 2 and shas[-1] != shas[0], "the live view did not switch"
        assert max(gaps) < 2.0, f"the camera stalled {max(gaps):.2f} s during the swap"
        assert deployed_in < 10
        print(f"deploy {deployed_in:.2f} s; longest gap between classified frames {max(gaps):.2f} s over {len(changes)} frames")
        time.sleep(3)  # watch looks at current.json every 3 s
        assert watch.poll() is None, "watch ended before the switch"
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=20)
        assert re.search(r"now watching with pets sha256 [0-9a-f]{64}; labels now cat, dog, other", err), err
    finally:
        if watch.poll() is None:
            watch.kill()
        serve.stop()
