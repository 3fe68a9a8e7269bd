"""The runner on an emulated Raspberry Pi gives the x86 answers; the Pi installer's checks.

The emulated Pi is arm64 Debian bookworm (Raspberry Pi OS's base) under qemu
user-mode emulation, with the runner's dependencies installed from aarch64 wheels
(see ``tests/pi/pi_root.py``; built once and cached). Its timings are emulator
timings, so these tests compare answers only and never report speed.

Skips, with the reason, only where the emulator cannot be set up (apt-get cannot
install qemu-user-static/debootstrap, or no network for the first build).
"""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import CLASS_COLOURS, REPO, SHARED_DATA, draw_photo
from PIL import Image

PI_DIR = REPO / "tests" / "pi"
DEPLOY = REPO / "edge_runner" / "deploy"
INSTALLER = DEPLOY / "install-pi.sh"
SHIPPED = {"float": REPO / "models" / "cats_dogs_float16.tflite", "int8": REPO / "models" / "cats_dogs_int8.tflite"}
FLOAT_TOLERANCE = 1e-5
EMULATED_TIMEOUT = 600


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


pi_root = _load("edgekit_pi_root", PI_DIR / "pi_root.py")


# -- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulated_pi():
    """The cached arm64 root with the runner's ``[edge,serve]`` wheels (pinned to this host's versions)."""
    try:
        return pi_root.prepare()
    except pi_root.PiRootUnavailable as exc:
        pytest.skip(f"no emulated Raspberry Pi here: {exc}")


@pytest.fixture(scope="module")
def pi_workdir(tmp_path_factory):
    """The runner package (and the shipped models/, if any) copied where the emulated Pi imports them from."""
    work = tmp_path_factory.mktemp("pi")
    package_dir = pi_root.copy_package(work / "pkg")
    models = REPO / "models"
    if any(path.is_file() for path in SHIPPED.values()):
        shutil.copytree(models, package_dir / "models", ignore=shutil.ignore_patterns(".*"))
    return work


def _photo_inputs(folder: Path) -> tuple[list[str], list[str]]:
    """A few generated images (JPEG, large JPEG, RGBA PNG, EXIF-rotated JPEG) and up to 3 real photos."""
    folder.mkdir(parents=True, exist_ok=True)
    red, green, blue = (CLASS_COLOURS[name] for name in ("red", "green", "blue"))
    draw_photo(red, seed=1).save(folder / "red.jpg", quality=90)
    draw_photo(green, size=(1024, 768), seed=2).save(folder / "green_large.jpg", quality=85)
    draw_photo(blue, seed=3).convert("RGBA").save(folder / "blue_alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    draw_photo(red, size=(96, 64), seed=4).save(folder / "red_rotated.jpg", exif=exif.tobytes())
    generated = [str(folder / name) for name in ("red.jpg", "green_large.jpg", "blue_alpha.png", "red_rotated.jpg")]
    real = []
    if SHARED_DATA.is_dir():
        validation = SHARED_DATA / "validation"
        for pattern in ("cats/*.jpg", "dogs/*.jpg"):
            real += [str(p) for p in sorted(validation.glob(pattern))[:2]]
        real = real[:3]
    return generated, real


@pytest.fixture(scope="module")
def check_inputs(tmp_path_factory, tiny_models):
    """The ``runner_check.py`` arguments: tiny float32 + int8 models on every image; the shipped models on a few.

    Emulation is slow for the shipped MobileNetV2-224 (seen here: int8 ~0.5 s, float16
    ~3-4 s per image, on a loaded 2-core machine), so the shipped int8 model sees two
    real photos (when ``../shared`` exists) and one generated image, the float one a single photo.
    """
    generated, real = _photo_inputs(tmp_path_factory.mktemp("pi_photos"))
    args = ["--model", str(tiny_models["float32"]), "--model", str(tiny_models["int8"])]
    few = {"int8": (real[:2] + generated[:1]) if real else generated[:2], "float": (real or generated)[:1]}
    for kind, path in SHIPPED.items():
        if path.is_file():
            args += ["--model", f"{path}:{','.join(few[kind])}"]
    return args + generated + real


@pytest.fixture(scope="module")
def x86_reference(check_inputs):
    """``runner_check.py`` on this host: the answers the emulated Pi must give."""
    return _run_host_check(check_inputs)


def _run_host_check(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, str(PI_DIR / "runner_check.py"), *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _run_emulated(root, profile_name: str, args: list[str], workdir: Path) -> subprocess.CompletedProcess:
    profile = pi_root.PROFILES[profile_name]
    prefix = pi_root.make_prefix(root.rootfs, profile, workdir / f"prefix-{profile_name}")
    return root.run(profile, prefix, args, pythonpath=[workdir / "pkg"], cwd=workdir, timeout=EMULATED_TIMEOUT)


def _tolerance(model: dict) -> float:
    """Float outputs: 1e-5. Quantised outputs: one quantisation step of the output tensor."""
    if model["output_dtype"].startswith("float"):
        return FLOAT_TOLERANCE
    return model["output_scale"] * 1.001


def assert_same_answers(x86: dict, pi: dict) -> dict[str, float]:
    """Same pixels, labels (up to a tie within tolerance) and probabilities; returns the largest difference per model."""
    assert [m["path"] for m in pi["models"]] == [m["path"] for m in x86["models"]]
    assert len(pi["results"]) == len(x86["results"])
    largest: dict[str, float] = {}
    for want, got in zip(x86["results"], pi["results"]):
        where = f"{Path(x86['models'][want['model']]['path']).name} on {Path(want['source']).name}"
        assert (got["model"], got["source"]) == (want["model"], want["source"])
        assert "error" not in want and "error" not in got, (want.get("error"), got.get("error"))
        assert got["pixels_sha256"] == want["pixels_sha256"], f"{where}: preprocessing differs between x86 and the Pi"
        tolerance = _tolerance(x86["models"][want["model"]])
        difference = max(abs(a - b) for a, b in zip(want["probabilities"], got["probabilities"]))
        assert difference <= tolerance, f"{where}: probabilities differ by {difference:.3g} (allowed {tolerance:.3g})"
        if got["label"] != want["label"]:  # only acceptable as a tie within the tolerance
            labels = x86["models"][want["model"]]["labels"]
            runner_up = want["probabilities"][labels.index(got["label"])]
            assert want["score"] - runner_up <= tolerance, f"{where}: label {got['label']} on the Pi, {want['label']} on x86"
        name = Path(x86["models"][want["model"]]["path"]).name
        largest[name] = max(largest.get(name, 0.0), difference)
    return largest


# -- the emulated Pi ----------------------------------------------------------------


def test_every_runtime_dependency_installs_from_aarch64_wheels(emulated_pi):
    """pyproject's base + ``[edge,serve]`` dependencies, and theirs, are aarch64 or pure-Python wheels: nothing to compile on a Pi."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[str(emulated_pi.site)])}
    for text in pi_root.runtime_requirements():
        requirement = Requirement(text)
        dist = installed.get(canonicalize_name(requirement.name))
        assert dist is not None, f"{requirement.name} is not installed in the emulated Pi"
        assert requirement.specifier.contains(dist.version, prereleases=True), (text, dist.version)
    for name, dist in installed.items():
        tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines() if line.startswith("Tag:")]
        assert tags and all(tag.endswith("-any") or "aarch64" in tag for tag in tags), f"{name}: wheel tags {tags}"
    libraries = list(emulated_pi.site.rglob("*.so")) + list(emulated_pi.site.rglob("*.so.*"))
    assert libraries, "no native libraries: the runtime cannot be in there"
    for library in libraries:
        with open(library, "rb") as handle:
            header = handle.read(20)
        if header[:4] == b"\x7fELF":
            assert int.from_bytes(header[18:20], "little") == 183, f"{library} is not an AArch64 binary"  # EM_AARCH64


def test_runtime_dependencies_have_aarch64_wheels_for_trixie_python():
    """Raspberry Pi OS trixie has Python 3.13 and glibc 2.41: pip finds an aarch64 or pure wheel for every dependency."""
    requirements = pi_root.runtime_requirements()
    wheel_set = pi_root.WheelSet(
        "trixie", requirements, pi_root.host_pins(requirements), python_version="3.13",
        platforms=pi_root.manylinux_platforms(41),
    )
    try:
        wheels = pi_root.resolve_wheels(wheel_set, cache=pi_root.cache_dir())
    except pi_root.PiRootUnavailable as exc:
        pytest.skip(str(exc))
    assert {"numpy", "pillow", "ai-edge-litert"} <= {name.lower() for name in wheels}
    for name, filename in wheels.items():
        assert filename.endswith(".whl") and ("aarch64" in filename or filename.endswith("-any.whl")), (name, filename)
        assert "-cp313-" in filename or "-abi3-" in filename or filename.endswith("-any.whl"), (name, filename)


@pytest.mark.parametrize("profile", ["pi4", "pi5"])
def test_runner_on_emulated_pi_matches_x86(emulated_pi, pi_workdir, check_inputs, x86_reference, profile):
    """Same photos, same models: the Pi's labels and probabilities equal x86's (float: 1e-5; int8: one step)."""
    done = _run_emulated(emulated_pi, profile, [str(PI_DIR / "runner_check.py"), *check_inputs], pi_workdir)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    pi = json.loads(done.stdout)
    board = pi_root.PROFILES[profile].board
    assert pi["platform"]["machine"] == "aarch64"
    assert pi["platform"]["cpu_model"].startswith(board), pi["platform"]
    assert pi["platform"]["python"].startswith("3.11.")
    assert pi["platform"]["runtime"] == x86_reference["platform"]["runtime"]
    largest = assert_same_answers(x86_reference, pi)
    print(f"{board} (emulated) vs x86, largest probability difference per model: {largest}")


def _cli_json(command: list[str], run) -> list[dict]:
    done = run(command)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("profile", ["pi4", "pi5"])
def test_cli_json_on_emulated_pi_matches_x86(emulated_pi, pi_workdir, tiny_models, profile, tmp_path):
    """``python -m edge_runner PHOTOS --json`` as a Pi user runs it: with the shipped model by default, else the tiny int8 one."""
    generated, real = _photo_inputs(tmp_path / "photos")
    photos = (real[:2] + generated[:1]) if SHIPPED["int8"].is_file() else generated
    model_args = [] if SHIPPED["int8"].is_file() else ["--model", str(tiny_models["int8"])]
    argv = ["-m", "edge_runner", *photos, *model_args, "--json", "--top-k", "2"]
    x86 = _cli_json(
        [sys.executable, *argv],
        lambda cmd: subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                                   env={**os.environ, "PYTHONPATH": str(REPO)}),
    )
    pi = _cli_json(argv, lambda cmd: _run_emulated(emulated_pi, profile, cmd, pi_workdir))
    from edge_runner import Classifier

    model = SHIPPED["int8"] if SHIPPED["int8"].is_file() else tiny_models["int8"]
    classifier = Classifier(model)
    tolerance = classifier.output_scale * 1.001 + 1e-6 if classifier.output_scale else FLOAT_TOLERANCE + 1e-6
    assert [p["source"] for p in pi] == [x["source"] for x in x86] == photos
    for want, got in zip(x86, pi):
        assert abs(got["score"] - want["score"]) <= tolerance, (want, got)
        assert got["label"] == want["label"] or abs(want["top_k"][0]["score"] - want["top_k"][1]["score"]) <= tolerance
        assert {item["label"] for item in got["top_k"]} == {item["label"] for item in want["top_k"]}


def test_runner_with_apt_numpy_1_matches_x86(emulated_pi, pi_workdir, tiny_models, tmp_path):
    """With bookworm's apt numpy (1.24.2) kept, as install-pi.sh does for picamera2, the runner still gives the x86 answers."""
    requirements = pi_root.runtime_requirements()
    pins = tuple(pin for pin in pi_root.host_pins(requirements) if not pin.startswith("numpy=="))
    try:
        root = pi_root.prepare(pi_root.WheelSet("apt-numpy", requirements, pins + ("numpy==1.24.2",)))
    except pi_root.PiRootUnavailable as exc:
        pytest.skip(f"no emulated Raspberry Pi here: {exc}")
    generated, _ = _photo_inputs(tmp_path / "photos")
    args = ["--model", str(tiny_models["float32"]), "--model", str(tiny_models["int8"]), *generated]
    done = _run_emulated(root, "pi4", [str(PI_DIR / "runner_check.py"), *args], pi_workdir)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    pi = json.loads(done.stdout)
    assert pi["platform"]["numpy"] == "1.24.2"
    assert_same_answers(_run_host_check(args), pi)


def test_device_check_passes_on_emulated_pi(emulated_pi, pi_workdir, tiny_models):
    """install-pi.sh's device check on a Pi 4 without a camera: the model classifies; the camera is reported, not fatal."""
    args = [str(DEPLOY / "device_check.py"), "--model", str(tiny_models["int8"]), "--json"]
    done = _run_emulated(emulated_pi, "pi4", args, pi_workdir)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stdout}{done.stderr[-2000:]}"
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["device"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert (report["machine"], report["bits"]) == ("aarch64", 64)
    assert report["runtime"].startswith("ai-edge-litert ")
    assert report["label"] in ("red", "green", "blue") and 0.0 <= report["score"] <= 1.0
    assert report["web_server"].startswith("ready (flask "), report["web_server"]  # what the systemd service runs
    assert report["camera_ok"] is False and report["camera"].startswith("not available: ")
    assert report["picamera2"].startswith("not installed")


def test_web_server_on_emulated_pi_answers_like_x86(emulated_pi, pi_workdir, tiny_models, tmp_path):
    """The systemd unit's command, ``python -m edge_runner serve``, starts on a Pi 5 and classifies an upload as x86 does."""
    from edge_runner import Classifier, preprocess

    photo = tmp_path / "green.jpg"
    draw_photo(CLASS_COLOURS["green"], seed=7).save(photo, quality=90)
    profile = pi_root.PROFILES["pi5"]
    prefix = pi_root.make_prefix(emulated_pi.rootfs, profile, pi_workdir / "prefix-serve")
    args = ["-m", "edge_runner", "serve", "--model", str(tiny_models["int8"]), "--host", "127.0.0.1", "--port", "0",
            "--interpreters", "1"]
    process = subprocess.Popen(
        emulated_pi.command(profile, prefix, args), env=emulated_pi.environment([pi_workdir / "pkg"]),
        cwd=pi_workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    output, url = [], None
    try:
        deadline = time.monotonic() + 180
        while url is None and time.monotonic() < deadline and process.poll() is None:
            try:
                output.append(lines.get(timeout=1))
            except queue.Empty:
                continue
            found = re.search(r"open (http://127\.0\.0\.1:\d+/)", output[-1])
            url = found.group(1) if found else None
        assert url, f"the server did not start on the emulated Pi: {''.join(output)}{process.stderr.read() if process.poll() is not None else ''}"
        request = urllib.request.Request(url + "api/classify", data=photo.read_bytes(), method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
    finally:
        process.terminate()  # SIGTERM, as systemd stops the service
        process.wait(timeout=60)
    classifier = Classifier(tiny_models["int8"])
    want = classifier.classify(preprocess(photo, classifier.spec).array)
    assert answer["label"] == want.label
    assert abs(answer["score"] - want.score) <= classifier.output_scale * 1.001 + 1e-6


# -- device check and installer on this host -----------------------------------------------


def test_device_check_fails_clearly_without_a_usable_model(tmp_path, capsys):
    device_check = _load("edgekit_device_check", DEPLOY / "device_check.py")
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a model")
    assert device_check.main(["--model", str(broken), "--no-camera"]) == device_check.EXIT_FAILED
    out = capsys.readouterr().out
    assert f"problem:   model: {broken}: not a TFLite model" in out
    assert out.rstrip().endswith("result:    FAILED: the model cannot classify on this device")


def test_install_script_is_valid_bash():
    done = subprocess.run(["bash", "-n", str(INSTALLER)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    if shutil.which("shellcheck"):
        lint = subprocess.run(["shellcheck", str(INSTALLER)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout


OS_RELEASES = {
    "pios64-bookworm": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
    "pios64-trixie": 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n',
    "pios32-bookworm": 'PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"\nID=raspbian\nID_LIKE=debian\nVERSION_CODENAME=bookworm\n',
    "bullseye": 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_CODENAME=bullseye\n',
    "ubuntu": 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n',
}


def run_installer(tmp_path: Path, os_name: str, dpkg_arch: str, uname: str, *args: str, numpy: str = "") -> subprocess.CompletedProcess:
    """``install-pi.sh --dry-run`` with a faked OS, architecture, board and apt numpy."""
    os_release = tmp_path / "os-release"
    os_release.write_text(OS_RELEASES[os_name])
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    env = {
        **os.environ,
        "EDGEKIT_OS_RELEASE": str(os_release), "EDGEKIT_DPKG_ARCH": dpkg_arch, "EDGEKIT_UNAME_M": uname,
        "EDGEKIT_DEVICE_MODEL": str(model), "EDGEKIT_SYSTEM_NUMPY": numpy,
    }
    return subprocess.run(
        ["bash", str(INSTALLER), "--dry-run", "--no-apt", "--venv", str(tmp_path / "venv"), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )


@pytest.mark.parametrize("os_name", ["pios64-bookworm", "pios64-trixie"])
def test_installer_plans_venv_install_and_check_on_64_bit_pi_os(tmp_path, os_name):
    done = run_installer(tmp_path, os_name, "arm64", "aarch64")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "device: Raspberry Pi 5 Model B Rev 1.0" in out
    assert f"+ python3 -m venv --system-site-packages {tmp_path / 'venv'}" in out
    # A plain install (not -e): the wheel carries the shipped model, the web page and the deploy files.
    assert f"+ {tmp_path / 'venv'}/bin/python -m pip install --disable-pip-version-check {REPO}[edge,serve]\n" in out
    assert f"+ {tmp_path / 'venv'}/bin/python {DEPLOY / 'device_check.py'}" in out
    assert "systemctl" not in out  # the service only with --service


def test_installer_keeps_apt_numpy_1_for_the_camera_stack(tmp_path):
    done = run_installer(tmp_path, "pios64-bookworm", "arm64", "aarch64", numpy="1.24.2")
    assert done.returncode == 0, done.stderr
    assert "keeping numpy < 2" in done.stdout
    assert f"--disable-pip-version-check {REPO}[edge,serve] -c " in done.stdout


@pytest.mark.parametrize(
    "os_name, dpkg_arch, uname, hint",
    [
        ("pios32-bookworm", "armhf", "armv7l", "32-bit ARM userland (armhf)"),
        ("pios32-bookworm", "armhf", "aarch64", "the kernel is 64-bit, but the installed system is 32-bit"),
        ("pios64-bookworm", "riscv64", "riscv64", "unsupported CPU architecture"),
    ],
)
def test_installer_refuses_32_bit_and_other_cpus_with_what_to_do(tmp_path, os_name, dpkg_arch, uname, hint):
    done = run_installer(tmp_path, os_name, dpkg_arch, uname)
    assert done.returncode == 3, done.stdout + done.stderr
    assert hint in done.stderr
    if dpkg_arch == "armhf":
        assert "aarch64" in done.stderr and "Install Raspberry Pi OS (64-bit)" in done.stderr
    assert "+ python3 -m venv" not in done.stdout  # stopped before doing anything


@pytest.mark.parametrize("os_name", ["bullseye", "ubuntu"])
def test_installer_refuses_other_oses_unless_told_to_try(tmp_path, os_name):
    done = run_installer(tmp_path, os_name, "arm64", "aarch64")
    assert done.returncode == 2
    assert "unsupported OS" in done.stderr and "--any-os" in done.stderr
    forced = run_installer(tmp_path, os_name, "arm64", "aarch64", "--any-os")
    assert forced.returncode == 0, forced.stderr
    assert "continuing because of --any-os" in forced.stdout


def test_installer_service_unit_is_rendered_and_valid(tmp_path):
    done = run_installer(tmp_path, "pios64-bookworm", "arm64", "aarch64", "--service")
    assert done.returncode == 0, done.stderr
    assert "+ systemctl enable --now edgekit.service" in done.stdout
    unit = done.stdout.split("+ write /etc/systemd/system/edgekit.service:\n", 1)[1].split("\n+ ", 1)[0]
    assert not any(placeholder in unit for placeholder in ("@USER@", "@REPO@", "@VENV@"))
    assert (
        f"ExecStart={tmp_path / 'venv'}/bin/edge-runner serve --camera --token-file ${{EDGEKIT_TOKEN_FILE}} $EDGEKIT_SERVE_ARGS"
        in unit
    )
    assert "Environment=EDGEKIT_TOKEN_FILE=/etc/edgekit/token" in unit
    assert "+ write a new token to /etc/edgekit/token" in done.stdout  # never a real token in a dry run
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed: the rendered unit was not verified")
    # Verify the same template rendered for this machine's user, with a venv whose python exists.
    venv = tmp_path / "venv-for-verify"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "edge-runner").symlink_to(sys.executable)  # systemd-analyze checks that ExecStart exists
    rendered = (DEPLOY / "edgekit.service").read_text()
    for key, value in {"@USER@": getpass.getuser(), "@REPO@": str(REPO), "@VENV@": str(venv)}.items():
        rendered = rendered.replace(key, value)
    (tmp_path / "edgekit.service").write_text(rendered)
    verify = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "edgekit.service")], capture_output=True, text=True)
    assert verify.returncode == 0 and "edgekit.service" not in verify.stderr, verify.stderr
