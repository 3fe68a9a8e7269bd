"""An emulated Raspberry Pi userland for CI.

Raspberry Pi OS (64-bit) is Debian arm64 plus Raspberry Pi's packages, so an arm64
Debian bookworm root (Python 3.11) run under qemu's user-mode emulation is the Pi's
userland minus its kernel and hardware. This module builds that root once, caches
it, installs the runner's dependencies into it from aarch64 wheels, and runs the
root's Python as a Pi 4 or Pi 5 CPU.

This machine has no binfmt_misc, so debootstrap's second stage (which runs arm64
programs as if native) cannot run: the first stage downloads the packages and this
module unpacks them with ``dpkg-deb -x``, which is all Python needs. Programs are
started explicitly with ``qemu-aarch64-static -L PREFIX ROOT/usr/bin/python3.11``.

LiteRT's CPU detection reads ``/proc/cpuinfo`` and crashes (SIGSEGV) on the host's
x86 one. qemu's ``-L PREFIX`` serves ``PREFIX/proc/cpuinfo`` instead, so each
profile gets its own prefix: symlinks to the shared root plus a Pi-style cpuinfo
that matches the emulated CPU (a mismatch gives SIGILL: the runtime then uses
instructions the emulated CPU lacks).

Cache layout (``$EDGEKIT_PI_CACHE``, default ``~/.cache/edgekit/pi-root-bookworm-arm64``)::

    rootfs/                 the unpacked arm64 packages; rootfs/.edgekit-rootfs.json says what from
    wheels-<name>-<key>/    ``pip install --target`` of one wheel set; <key> hashes requirements, pins, tags
    lock                    serialises builds between concurrent runs

By hand::

    python tests/pi/pi_root.py build
    python tests/pi/pi_root.py run --profile pi5 -- -c "import platform; print(platform.machine())"

Timings measured under emulation are emulator timings, never Raspberry Pi timings.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SUITE = "bookworm"  # Raspberry Pi OS 12's base: Python 3.11, glibc 2.36 (trixie: Python 3.13, glibc 2.41)
ARCH = "arm64"
PYTHON_VERSION = "3.11"
ROOT_PACKAGES = ("python3",)
TOOL_PACKAGES = ("qemu-user-static", "debootstrap")
# What install-pi.sh installs on a Pi: the runner and its web server (the camera's OpenCV is optional).
RUNNER_EXTRAS = ("edge", "serve")
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
CACHE_ENV = "EDGEKIT_PI_CACHE"
MIRROR_ENV = "EDGEKIT_DEBIAN_MIRROR"
DEFAULT_CACHE = Path.home() / ".cache" / "edgekit" / f"pi-root-{SUITE}-{ARCH}"
# pip on a Pi with bookworm's glibc 2.36 accepts manylinux wheels up to 2.36; listing
# them all makes pip pick what it would pick on the device.
GLIBC_MINOR = 36


def manylinux_platforms(glibc_minor: int) -> tuple[str, ...]:
    """The aarch64 platform tags pip accepts on a system with glibc 2.<glibc_minor>."""
    return ("manylinux2014_aarch64",) + tuple(f"manylinux_2_{minor}_aarch64" for minor in range(17, glibc_minor + 1))


PLATFORMS = manylinux_platforms(GLIBC_MINOR)
# What pip prints when it could not reach an index, as opposed to an index saying "no such wheel".
_NETWORK_ERRORS = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|ConnectTimeout|ReadTimeout|ProxyError|"
    r"Connection refused|SSLError|No route to host",
)


class PiRootUnavailable(RuntimeError):
    """The emulated Pi cannot be set up here (no apt-get, not root, no network): a reason to skip, not a failure."""


class PiRootError(RuntimeError):
    """Setting up the emulated Pi failed for a reason that is a real finding (e.g. a dependency has no aarch64 wheel)."""


@dataclass(frozen=True)
class Profile:
    """A Raspberry Pi model as emulated: the qemu CPU and the matching ``/proc/cpuinfo``.

    Attributes:
        name: ``"pi4"`` or ``"pi5"``.
        board: the board's name, for messages.
        cpu: the ``qemu-aarch64 -cpu`` model.
        cpuinfo: the Pi-style cpuinfo file served as ``/proc/cpuinfo``.
    """

    name: str
    board: str
    cpu: str
    cpuinfo: Path


PROFILES = {
    # BCM2711: Cortex-A72, ARMv8.0-A without the crypto extension.
    "pi4": Profile("pi4", "Raspberry Pi 4 Model B", "cortex-a72", HERE / "cpuinfo-pi4"),
    # BCM2712: Cortex-A76, ARMv8.2-A with dot product (asimddp), fp16 and crypto.
    "pi5": Profile("pi5", "Raspberry Pi 5 Model B", "cortex-a76", HERE / "cpuinfo-pi5"),
}


@dataclass(frozen=True)
class Tools:
    qemu: Path
    debootstrap: Path


@dataclass(frozen=True)
class WheelSet:
    """What to ``pip install`` into the root.

    Attributes:
        name: a short name for the cache directory (``"runner"``).
        requirements: PEP 508 requirement strings, e.g. from pyproject.toml.
        constraints: extra pins (``"numpy==2.4.6"``) applied with ``pip -c``.
    """

    name: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...] = ()
    platforms: tuple[str, ...] = PLATFORMS
    python_version: str = PYTHON_VERSION

    @property
    def key(self) -> str:
        text = json.dumps([self.requirements, self.constraints, self.platforms, self.python_version])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class PiRoot:
    """A built root with one wheel set installed; run its Python with :meth:`run`."""

    rootfs: Path
    site: Path
    tools: Tools
    wheel_set: WheelSet
    built: list[str] = field(default_factory=list, compare=False)  # what this call had to build (for reports)

    @property
    def python(self) -> Path:
        return self.rootfs / "usr" / "bin" / f"python{PYTHON_VERSION}"

    def command(self, profile: Profile, prefix: Path, args: Sequence[str]) -> list[str]:
        return [str(self.tools.qemu), "-cpu", profile.cpu, "-L", str(prefix), str(self.python), *args]

    def environment(self, pythonpath: Sequence[Path] = ()) -> dict[str, str]:
        """The host environment minus anything Python- or venv-related, plus the root's PYTHONPATH."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTHON", "QEMU_")) and key not in ("VIRTUAL_ENV", "LD_LIBRARY_PATH", "LD_PRELOAD")
        }
        env.update(
            PYTHONPATH=os.pathsep.join(str(p) for p in [*pythonpath, self.site]),
            PYTHONNOUSERSITE="1",
            PYTHONDONTWRITEBYTECODE="1",  # the cached root stays as built
            LC_ALL="C.UTF-8",
        )
        return env

    def run(
        self,
        profile: Profile,
        prefix: Path,
        args: Sequence[str],
        *,
        pythonpath: Sequence[Path] = (),
        cwd: Path | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run the root's ``python3.11 ARGS`` as ``profile``; ``prefix`` comes from :func:`make_prefix`."""
        return subprocess.run(
            self.command(profile, prefix, args),
            env=self.environment(pythonpath),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


# -- requirements ---------------------------------------------------------------


def runtime_requirements(pyproject: Path = REPO / "pyproject.toml", extras: Sequence[str] = RUNNER_EXTRAS) -> tuple[str, ...]:
    """The base dependencies plus the given extras, as written in pyproject.toml."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise ValueError(f"extra must be one of {sorted(optional)}, received {extra!r}")
        requirements += [r for r in optional[extra] if r not in requirements]
    return tuple(requirements)


def host_pins(requirements: Sequence[str]) -> tuple[str, ...]:
    """``name==version`` for each requirement installed on this host (and satisfying it).

    Pinning the root to the host's versions means a difference between the x86 and
    the emulated results comes from the CPU architecture, not from a library update.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    pins = []
    for text in requirements:
        requirement = Requirement(text)
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        if requirement.specifier.contains(version, prereleases=True):
            pins.append(f"{requirement.name}=={version}")
    return tuple(pins)


# -- tools and root --------------------------------------------------------------


def _as_root(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return command
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n", *command]
    raise PiRootUnavailable(f"`{command[0]}` needs root, and this user is neither root nor allowed passwordless sudo")


def _which(name: str) -> Path | None:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    return Path(found) if found else None


def ensure_tools() -> Tools:
    """qemu-aarch64-static and debootstrap, installed with apt-get when missing.

    Raises ``PiRootUnavailable`` (the reason to skip) when they are missing and
    apt-get cannot install them.
    """
    qemu, debootstrap = _which("qemu-aarch64-static"), _which("debootstrap")
    packages = [p for p, tool in zip(TOOL_PACKAGES, (qemu, debootstrap)) if tool is None]
    if not DEBIAN_KEYRING.is_file():  # e.g. an Ubuntu CI runner bootstrapping Debian
        packages.append("debian-archive-keyring")
    if packages:
        if not _which("apt-get"):
            raise PiRootUnavailable(f"not installed: {', '.join(packages)}; and there is no apt-get to install it")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        ):
            done = subprocess.run(_as_root(command), capture_output=True, text=True, env=env, timeout=600)
            if done.returncode != 0:
                raise PiRootUnavailable(
                    f"apt-get cannot install {' '.join(packages)}: `{' '.join(command)}` exited with "
                    f"{done.returncode}: {_tail(done.stderr or done.stdout)}"
                )
        qemu, debootstrap = _which("qemu-aarch64-static"), _which("debootstrap")
    if qemu is None or debootstrap is None:
        raise PiRootUnavailable("apt-get ran, but qemu-aarch64-static or debootstrap is still not on PATH")
    return Tools(qemu, debootstrap)


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:]) or "(no output)"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        # debootstrap made device nodes and root-owned files; removal may need root too.
        if subprocess.run(["rm", "-rf", str(path)], capture_output=True).returncode != 0:
            subprocess.run(_as_root(["rm", "-rf", str(path)]), check=True, capture_output=True)


def _rootfs_recipe() -> dict:
    return {"suite": SUITE, "arch": ARCH, "variant": "minbase", "include": list(ROOT_PACKAGES), "trimmed": True}


def build_rootfs(cache: Path, tools: Tools, mirror: str | None = None) -> tuple[Path, bool]:
    """The unpacked arm64 root under ``cache/rootfs``, built unless a complete one is there.

    Returns ``(rootfs, built_now)``. A half-built root from an interrupted run is
    discarded and rebuilt (it is only renamed into place when complete).
    """
    rootfs = cache / "rootfs"
    stamp = rootfs / ".edgekit-rootfs.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == _rootfs_recipe():
        return rootfs, False
    partial = cache / "rootfs.partial"
    for stale in (partial, rootfs):
        _remove(stale)
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    command = [
        str(tools.debootstrap), "--foreign", f"--arch={ARCH}", "--variant=minbase",
        f"--include={','.join(ROOT_PACKAGES)}", SUITE, str(partial),
    ] + ([mirror] if mirror else [])
    done = subprocess.run(_as_root(command), capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        # Nearly always the mirror being unreachable; the log says.
        log = partial / "debootstrap" / "debootstrap.log"
        detail = _tail(log.read_text(errors="replace")) if log.is_file() else _tail(done.stderr or done.stdout)
        raise PiRootUnavailable(f"debootstrap could not fetch the arm64 {SUITE} packages: {detail}")
    archives = partial / "var" / "cache" / "apt" / "archives"
    debs = sorted(archives.glob("*.deb"))
    if not debs:
        raise PiRootError(f"debootstrap --foreign left no .deb files in {archives}")
    # The second stage would configure these with dpkg running as arm64; unpacking is enough for Python.
    for deb in debs:
        subprocess.run(_as_root(["dpkg-deb", "-x", str(deb), str(partial)]), check=True, capture_output=True)
    if os.geteuid() != 0:
        subprocess.run(_as_root(["chown", "-R", f"{os.getuid()}:{os.getgid()}", str(partial)]), check=True)
    # Nothing runs apt, man or gettext in here: drop the package lists, docs and translations (~100 MB).
    for deb in debs:
        deb.unlink()
    for unused in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"):
        _remove(partial / unused)
    python = partial / "usr" / "bin" / f"python{PYTHON_VERSION}"
    if not python.is_file():
        raise PiRootError(f"the unpacked root has no {python.relative_to(partial)}")
    probe = subprocess.run(
        [str(tools.qemu), "-L", str(partial), str(python), "-c", "import platform, ssl; print(platform.machine())"],
        capture_output=True, text=True, timeout=120,
    )
    if probe.returncode != 0 or probe.stdout.strip() != "aarch64":
        raise PiRootError(f"the emulated root's Python does not start: {_tail(probe.stderr or probe.stdout)}")
    (partial / ".edgekit-rootfs.json").write_text(json.dumps(_rootfs_recipe()))
    partial.rename(rootfs)
    return rootfs, True


def install_wheels(cache: Path, wheel_set: WheelSet) -> tuple[Path, bool]:
    """``pip install --target`` the wheel set for aarch64 CPython, binary wheels only.

    Returns ``(site_dir, built_now)``. Older directories of the same wheel set name
    are removed when its requirements, pins or tags change. Raises ``PiRootError``
    when a requirement has no aarch64 wheel (what the check exists to catch) and
    ``PiRootUnavailable`` when the package index cannot be reached.
    """
    site = cache / f"wheels-{wheel_set.name}-{wheel_set.key}"
    stamp = site / ".edgekit-wheels.json"
    if stamp.is_file():
        return site, False
    partial = cache / f"{site.name}.partial"
    _remove(partial)
    try:
        _pip_install(wheel_set, ["--target", str(partial)])
    except (PiRootError, PiRootUnavailable):
        _remove(partial)
        raise
    for old in cache.glob(f"wheels-{wheel_set.name}-*"):
        if old != partial:
            _remove(old)
    (partial / ".edgekit-wheels.json").write_text(json.dumps(wheel_set.__dict__, default=list, indent=1))
    partial.rename(site)
    return site, True


def _pip_install(wheel_set: WheelSet, extra_args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """``pip install`` the wheel set for aarch64 CPython, binary wheels only; errors as in :func:`install_wheels`."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\n".join(wheel_set.constraints) + "\n")
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-warn-conflicts", "--no-warn-script-location", *extra_args,
        "--implementation", "cp", "--python-version", wheel_set.python_version, "--only-binary=:all:",
        *(f"--platform={tag}" for tag in wheel_set.platforms),
        "-c", constraints.name, *wheel_set.requirements,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    finally:
        os.unlink(constraints.name)
    if done.returncode != 0:
        output = done.stderr + done.stdout
        errors = " | ".join(line for line in output.splitlines() if line.startswith("ERROR")) or _tail(output)
        if _NETWORK_ERRORS.search(output):
            raise PiRootUnavailable(f"pip cannot reach the package index for the aarch64 wheels: {errors}")
        raise PiRootError(
            f"pip cannot install {' '.join(wheel_set.requirements)} from aarch64 wheels for Python "
            f"{wheel_set.python_version}: {errors}"
        )
    return done


def resolve_wheels(wheel_set: WheelSet, cache: Path | None = None) -> dict[str, str]:
    """``{distribution: wheel file name}`` that pip would install for the wheel set, without installing it.

    Lets CI check another Python (trixie's 3.13) without building a second root.
    With ``cache``, the answer is kept in ``cache/resolved-<name>-<key>.json``, like a
    built wheel set, and asked again only when the wheel set changes.
    """
    saved = cache / f"resolved-{wheel_set.name}-{wheel_set.key}.json" if cache else None
    if saved is not None and saved.is_file():
        return json.loads(saved.read_text())
    with tempfile.TemporaryDirectory(prefix="edgekit-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        _pip_install(wheel_set, ["--dry-run", "--ignore-installed", "--report", str(report), "--target", str(Path(tmp) / "t")])
        items = json.loads(report.read_text())["install"]
    wheels = {item["metadata"]["name"]: item["download_info"]["url"].rsplit("/", 1)[-1] for item in items}
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        for old in saved.parent.glob(f"resolved-{wheel_set.name}-*.json"):
            old.unlink()
        saved.write_text(json.dumps(wheels, indent=1))
    return wheels


# Top-level directories the prefix leaves to the host: the kernel's (/dev, /sys; /proc except
# cpuinfo) and those where the host's files live (/tmp, /root, /home, ...), empty in the root.
# qemu reads a prefix entry's symlink as the path's target, so a linked /tmp would make
# Path.resolve() inside the Pi turn /tmp/x into a path under the cache that does not exist.
HOST_DIRS = frozenset({"proc", "dev", "sys", "tmp", "root", "home", "run", "mnt", "media", "srv", "opt"})


def make_prefix(rootfs: Path, profile: Profile, dest: Path) -> Path:
    """A qemu ``-L`` prefix for ``profile``: the root's top-level entries as symlinks, plus its own ``proc/cpuinfo``.

    Prefixes are cheap, so each run gets its own and concurrent Pi 4 / Pi 5 runs
    never rewrite a shared cpuinfo.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for entry in rootfs.iterdir():
        if entry.name in HOST_DIRS:
            continue
        link = dest / entry.name
        if not link.is_symlink():
            link.symlink_to(entry)
    (dest / "proc").mkdir(exist_ok=True)
    shutil.copyfile(profile.cpuinfo, dest / "proc" / "cpuinfo")
    return dest


def prepare(wheel_set: WheelSet | None = None, cache: Path | None = None) -> PiRoot:
    """Build or reuse the root and the wheel set (default: the runner's ``[edge,serve]`` install pinned to the host's versions)."""
    if wheel_set is None:
        requirements = runtime_requirements()
        wheel_set = WheelSet("runner", requirements, host_pins(requirements))
    cache = cache or cache_dir()
    tools = ensure_tools()
    with _locked(cache):
        rootfs, rootfs_built = build_rootfs(cache, tools)
        site, site_built = install_wheels(cache, wheel_set)
    built = (["rootfs"] if rootfs_built else []) + ([site.name] if site_built else [])
    return PiRoot(rootfs, site, tools, wheel_set, built)


def copy_package(dest: Path, package: str = "edge_runner") -> Path:
    """Copy the project's package (without caches) under ``dest``; returns ``dest`` for PYTHONPATH.

    The emulated Pi sees exactly the runner, as an installed package, and nothing else of the repository.
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")  # npm's copy for the browser app build
    shutil.copytree(REPO / package, dest / package, ignore=ignore, dirs_exist_ok=True)
    return dest


# -- command line -----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python tests/pi/pi_root.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build or reuse the cached root and the runner's wheels")
    run = sub.add_parser("run", help="run the root's python3.11 as a Pi (after `build`)")
    run.add_argument("--profile", choices=sorted(PROFILES), default="pi4")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments for python3.11 (after --)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        root = prepare()
    except (PiRootUnavailable, PiRootError) as exc:
        print(f"pi_root: error: {exc}", file=sys.stderr)
        return 1
    if args.command == "build":
        print(f"rootfs: {root.rootfs}\nwheels: {root.site}\nbuilt now: {', '.join(root.built) or 'nothing (cached)'}")
        return 0
    profile = PROFILES[args.profile]
    python_args = args.args[1:] if args.args[:1] == ["--"] else args.args
    with tempfile.TemporaryDirectory(prefix="edgekit-pi-") as tmp:
        prefix = make_prefix(root.rootfs, profile, Path(tmp) / "prefix")
        package_dir = copy_package(Path(tmp) / "pkg")
        done = subprocess.run(root.command(profile, prefix, python_args), env=root.environment([package_dir]))
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
