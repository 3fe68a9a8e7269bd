"""Benchmark "teach it your door": one round of the loop, through the kit's public commands and API only.

    python tests/benchmarks/bench_teach.py [--run RUN] --scene PHOTO [PHOTO ...] [--pets DIR]

RUN is a training run folder (default: the one ``make all`` leaves, ``runs/cats_dogs/train``);
the model on the device is its int8 export (``RUN/../tflite/*_int8.tflite``). For each scene
photo a camera clip is built (MJPG ``.avi``, 320x240, ``--fps``): the scene fills the frame for
``--minutes`` with small camera noise (a random 95 % crop and sensor noise per frame), and a
pet from ``--pets`` passes every ``--pet-every`` seconds for ``--pet-seconds``. Then, as a user
with a device would:

1. a device ``serve`` (a real process, with a token, ``--review-dir`` and ``--deploy-dir``) runs;
2. ``python -m edge_runner watch --camera CLIP --review-dir`` plays each clip (events counted:
   a visit is false when no pet was in view during it; a pet passage is found when a visit overlaps it);
3. the review queue is answered through ``/api/review`` the way a user would, by looking at the
   picture (the bench compares each frame with the scene and the pets it pasted): a scene frame is
   "nothing", a pet frame its pet; at most ``--max-reviews`` frames in all;
4. the reviewed frames are downloaded (``/api/review/export.zip``), ``python -m train --init-from RUN
   --data door=EXPORT`` retrains, ``python -m convert gate-device`` gates the new int8 model against
   the device's, and ``python -m edge_runner deploy`` sends it to the running ``serve``;
5. the clips are played again by ``watch --deploy-dir`` (the deployed model), and both models
   classify ``--pets`` (``python -m edge_runner --json``): accuracy and a paired McNemar test.

Prints a table and, last, one JSON line with the figures. Exit status 0 when the loop ran (whatever
the figures), 1 when a step failed (its command and output are printed).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("EDGEKIT_SHARED", REPO.parent / "shared"))
FRAME_SIZE = (320, 240)
PY = sys.executable


class StepFailed(RuntimeError):
    """A command of the loop failed; the message holds its command line and output."""


@dataclass
class Clip:
    """A generated camera clip and what is in it: ``passes`` = ``[(start_s, end_s, label, photo)]``."""

    path: Path
    scene: Path
    seconds: float
    passes: list[tuple[float, float, str, Path]] = field(default_factory=list)


def load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def camera_frame(photo: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """A 320x240 ``uint8`` RGB frame of ``photo``: a random 95 % crop (a camera that shakes a little) plus sensor noise."""
    width, height = photo.size
    cw, ch = int(width * 0.95), int(height * 0.95)
    x, y = int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1))
    frame = np.asarray(photo.crop((x, y, x + cw, y + ch)).resize(FRAME_SIZE, Image.Resampling.BILINEAR), np.int16)
    return np.clip(frame + rng.integers(-5, 6, frame.shape, dtype=np.int16), 0, 255).astype(np.uint8)


def build_clip(path: Path, scene: Path, pets: list[tuple[Path, str]], args: argparse.Namespace, seed: int) -> Clip:
    """The scene for ``args.minutes``, a pet passing every ``args.pet_every`` s (the first after half a period)."""
    import cv2

    rng = np.random.default_rng(seed)
    clip = Clip(path, scene, args.minutes * 60.0)
    start = args.pet_every / 2
    while start + args.pet_seconds < clip.seconds and pets:
        photo, label = pets[len(clip.passes) % len(pets)]
        clip.passes.append((start, start + args.pet_seconds, label, photo))
        start += args.pet_every
    scene_image = load_rgb(scene)
    pet_images = {photo: load_rgb(photo) for _, _, _, photo in clip.passes}
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), args.fps, FRAME_SIZE)
    for i in range(int(clip.seconds * args.fps)):
        t = i / args.fps
        shown = next((pet_images[p] for s, e, _, p in clip.passes if s <= t < e), scene_image)
        writer.write(cv2.cvtColor(camera_frame(shown, rng), cv2.COLOR_RGB2BGR))
    writer.release()
    return clip


def choose_pets(pets_dir: Path, count: int, seed: int) -> list[tuple[Path, str]]:
    """``count`` photos alternating between the class folders of ``pets_dir`` (``[(photo, label)]``)."""
    rng = np.random.default_rng(seed)
    classes = [d for d in sorted(pets_dir.iterdir()) if d.is_dir()]
    photos = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")) for d in classes}
    chosen = []
    for i in range(count):
        name = classes[i % len(classes)].name
        chosen.append((photos[name][int(rng.integers(len(photos[name])))], name))
    return chosen


# -- the kit's commands ---------------------------------------------------------------------


def run(command: list[str], *, timeout: float = 3600, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
    if done.returncode != 0:
        raise StepFailed(f"{' '.join(map(str, command))}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def watch(clip: Clip, model: Path, review_dir: Path, deploy_dir: Path) -> list[dict]:
    """``watch``'s JSON events for one clip (every frame of the file, the device's settings)."""
    done = run([PY, "-m", "edge_runner", "watch", "--camera", str(clip.path), "--model", str(model), "--json",
                "--review-dir", str(review_dir), "--deploy-dir", str(deploy_dir)])
    with open(clip.path.with_suffix(".events.jsonl"), "a") as log:  # both rounds, for a look afterwards
        log.write(done.stdout)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def count_visits(clip: Clip, events: list[dict], outside_s: float = 5.0) -> tuple[int, int]:
    """(false visits, pet passages found) of one clip's events.

    A visit is false when more than ``outside_s`` seconds of it lie outside every pet passage (a misread scene
    keeps a visit open for as long as it fills the frame; a pet's visit ends about ``--hold`` seconds after it
    leaves). A passage is found when a visit of its label overlaps it.
    """
    visits = [(e["label"], e["start"], e["end"] if e.get("end") is not None else e["start"]) for e in events
              if e["event"] == "left"]

    def inside(start: float, end: float) -> float:
        return sum(max(0.0, min(end, e) - max(start, s)) for s, e, _, _ in clip.passes)

    false = sum((end - start) - inside(start, end) > outside_s for _, start, end in visits)
    found = sum(any(label == pet and start <= e and s <= end for label, start, end in visits) for s, e, pet, _ in clip.passes)
    return false, found


class Device:
    """A real ``serve`` process with a token, a deploy folder and a review queue (or a camera: ``camera``)."""

    def __init__(self, work: Path, model: Path, camera: Path | None = None) -> None:
        self.token = secrets.token_urlsafe(24)
        self.token_file = work / "token"
        self.token_file.write_text(self.token + "\n")
        self.token_file.chmod(0o600)
        self.review_dir, self.deploy_dir = work / "review", work / "deploy"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(work / "serve.log", "w")
        extra = ["--camera", str(camera)] if camera is not None else ["--review-dir", str(self.review_dir)]
        self.process = subprocess.Popen(
            [PY, "-m", "edge_runner", "serve", "--model", str(model), "--port", str(self.port),
             "--token-file", str(self.token_file), "--deploy-dir", str(self.deploy_dir), *extra],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).read()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.3)
        raise StepFailed(f"serve did not start: {(work / 'serve.log').read_text()[-2000:]}")

    def request(self, path: str, data: dict | None = None) -> bytes:
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(self.url + path, data=body, headers={"Authorization": f"Bearer {self.token}"})
        if body is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def deploy(device: Device, model: Path) -> float:
    """``python -m edge_runner deploy MODEL`` to ``device``; the command's wall time in seconds."""
    started = time.perf_counter()
    run([PY, "-m", "edge_runner", "deploy", str(model), "--url", device.url, "--token-file", str(device.token_file)])
    return time.perf_counter() - started


def swap_gap(work: Path, model: Path, new_model: Path, clip: Path) -> float:
    """The longest time (s) without a newly classified camera frame while ``new_model`` is deployed to a
    ``serve --camera CLIP`` (``/api/camera``'s frame count, sampled every 50 ms for 3 s before and after)."""
    import threading

    work.mkdir(exist_ok=True)
    device = Device(work, model, camera=clip)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            state = json.loads(device.request("/api/camera"))
            samples.append((time.monotonic(), int(state["frames"])))
            time.sleep(0.05)

    try:
        device.request("/api/camera/frame.jpg")  # a viewer: the capture loop runs
        sampler = threading.Thread(target=sample)
        sampler.start()
        time.sleep(3)
        deploy(device, new_model)
        time.sleep(3)
        stop.set()
        sampler.join()
    finally:
        device.close()
    changes = [t for (t, n), (_, m) in zip(samples, samples[1:]) if m != n]
    return max((b - a for a, b in zip(changes, changes[1:])), default=float("nan"))


def small(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((64, 48), Image.Resampling.BILINEAR), np.float32)


def answer_queue(device: Device, clips: list[Clip], budget: int, background: str) -> int:
    """Label pending frames as a user would, by what the picture shows (nearest of the scenes and pets pasted)."""
    references = [(small(load_rgb(c.scene)), "nothing") for c in clips]
    references += [(small(load_rgb(p)), label) for c in clips for _, _, label, p in c.passes]
    answered = 0
    items = json.loads(device.request("/api/review?status=pending&limit=200"))["records"]
    for item in items:  # newest first, as the page shows them
        if answered >= budget:
            break
        picture = small(Image.open(io.BytesIO(device.request(f"/api/review/{item['id']}.jpg"))))
        label = min(references, key=lambda ref: float(np.abs(ref[0] - picture).mean()))[1]
        device.request(f"/api/review/{item['id']}", {"label": label})
        answered += 1
    return answered


def pet_answers(model: Path, pets_dir: Path) -> dict[str, bool]:
    """``{photo: right}`` for the runner's answers (``--json``) on the class folders of ``pets_dir``."""
    done = run([PY, "-m", "edge_runner", "-m", str(model), str(pets_dir), "--json"])
    answers = {}
    for line in done.stdout.splitlines():
        if line.startswith("{") and "label" in (row := json.loads(line)):
            answers[row["source"]] = row["label"] == Path(row["source"]).parent.name
    return answers


def mcnemar_p(lost: int, gained: int) -> float:
    """Exact two-sided McNemar p-value for ``lost`` vs ``gained`` discordant pairs."""
    n = lost + gained
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(0, min(lost, gained) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def device_model(run_dir: Path) -> Path:
    found = sorted((run_dir.parent / "tflite").glob("*_int8.tflite"))
    if not found:
        raise StepFailed(f"--run {run_dir}: no int8 export in {run_dir.parent / 'tflite'} (run `make all` first)")
    return found[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=REPO / "runs" / "cats_dogs" / "train")
    parser.add_argument("--scene", type=Path, nargs="+", required=True, help="photos the device's model misreads")
    parser.add_argument("--pets", type=Path, default=SHARED / "data" / "cats_and_dogs_filtered" / "validation")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--pet-every", type=float, default=40.0)
    parser.add_argument("--pet-seconds", type=float, default=5.0)
    parser.add_argument("--max-reviews", type=int, default=50)
    parser.add_argument("--work", type=Path, default=None, help="keep the clips, runs and logs here (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_teach_") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        try:
            return teach(args, work)
        except StepFailed as exc:
            print(f"bench_teach: step failed: {exc}", file=sys.stderr)
            return 1


def teach(args: argparse.Namespace, work: Path) -> int:
    model = device_model(args.run)
    per_clip = int(args.minutes * 60 // args.pet_every)
    pets = choose_pets(args.pets, per_clip * len(args.scene), args.seed)
    clips = [build_clip(work / f"scene{i}.avi", scene, pets[i * per_clip:(i + 1) * per_clip], args, args.seed + i)
             for i, scene in enumerate(args.scene)]
    print(f"device model: {model}; {len(clips)} clips of {args.minutes:g} min at {args.fps:g} fps, "
          f"{sum(len(c.passes) for c in clips)} pet passages")
    device = Device(work, model)
    figures: dict = {}
    try:
        rows = []
        before = [count_visits(c, watch(c, model, device.review_dir, device.deploy_dir)) for c in clips]
        reviewed = answer_queue(device, clips, args.max_reviews, "nothing")
        export = work / "export"
        with zipfile.ZipFile(io.BytesIO(device.request("/api/review/export.zip"))) as archive:
            archive.extractall(export)
        started = time.perf_counter()
        run([PY, "-m", "train", "--init-from", str(args.run), "--data", f"door={export}", "--out", str(work / "newrun")])
        retrain_s = time.perf_counter() - started
        gate = run([PY, "-m", "convert", "gate-device", str(work / "newrun"), "--device", str(model),
                    "--reviewed", str(export), "--out", str(work / "gate")])
        gate_s = time.perf_counter() - started - retrain_s
        new_model = Path(json.loads((work / "gate" / "report.json").read_text())["new_model"]["path"])
        deploy_s = deploy(device, new_model)
        gap_s = swap_gap(work / "camera", model, new_model, clips[0].path)
        after = [count_visits(c, watch(c, model, device.review_dir, device.deploy_dir)) for c in clips]
        old_right, new_right = pet_answers(model, args.pets), pet_answers(new_model, args.pets)
        photos = sorted(old_right.keys() & new_right.keys())
        lost = sum(old_right[p] and not new_right[p] for p in photos)
        gained = sum(new_right[p] and not old_right[p] for p in photos)
        passes = sum(len(c.passes) for c in clips)
        for clip, (fb, pb), (fa, pa) in zip(clips, before, after):
            rows.append((clip.scene.name, fb, fa, f"{pb}/{len(clip.passes)}", f"{pa}/{len(clip.passes)}"))
        figures = {
            "false_visits_before": sum(f for f, _ in before), "false_visits_after": sum(f for f, _ in after),
            "pet_visits_found_before": round(sum(p for _, p in before) / passes, 4),
            "pet_visits_found_after": round(sum(p for _, p in after) / passes, 4),
            "pet_accuracy_before": round(sum(old_right[p] for p in photos) / len(photos), 4),
            "pet_accuracy_after": round(sum(new_right[p] for p in photos) / len(photos), 4),
            "mcnemar_p": round(mcnemar_p(lost, gained), 4), "reviewed_frames": reviewed,
            "retrain_s": round(retrain_s + gate_s, 1), "deploy_s": round(deploy_s, 2), "swap_gap_s": round(gap_s, 2),
        }
        print(gate.stdout.strip().splitlines()[-1] if gate.stdout.strip() else "")
    finally:
        device.close()
    print("\n| scene | false visits before | after | pet passages found before | after |\n| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")
    print(f"\npets ({len(photos)} photos in {args.pets}): accuracy {figures['pet_accuracy_before']:.2%} → "
          f"{figures['pet_accuracy_after']:.2%} (lost {lost}, gained {gained}, McNemar p = {figures['mcnemar_p']:.3g}); "
          f"{reviewed} frames reviewed; retrain {retrain_s:.0f} s + gate {gate_s:.0f} s; deploy {deploy_s:.2f} s "
          f"(longest pause of a camera's frames during a swap: {gap_s:.2f} s)")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
