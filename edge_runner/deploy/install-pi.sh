#!/usr/bin/env bash
# Install edgekit's runner on a Raspberry Pi, from a clone of the repository:
#
#     bash edge_runner/deploy/install-pi.sh [--service] [options]
#
# Raspberry Pi OS (64-bit) bookworm or trixie, on a Pi 3, 4, 5 or Zero 2 W. It
#   1. checks the OS and that the userland is 64-bit (the TFLite runtime, ai-edge-litert,
#      publishes aarch64 wheels only: there is nothing to install on 32-bit armhf),
#   2. installs the few apt packages it needs (python3-venv; python3-picamera2 for the camera module),
#   3. makes a virtual environment with --system-site-packages, so apt's picamera2 and libcamera
#      are importable in it, and installs the runner, its web page and the shipped model into it
#      (`pip install '.[edge,serve]'`, a plain install: the clone can be moved or deleted afterwards;
#      run this script again after `git pull` to update),
#   4. runs edge_runner/deploy/device_check.py: the model loads and classifies, the camera opens,
#   5. with --service, generates the web page's access token (once: /etc/edgekit/token, readable by root
#      and the service's group only; printed once), and installs and starts edgekit.service
#      (`python -m edge_runner serve --camera --token-file /etc/edgekit/token`).
#
# Options:
#   --venv DIR      where to make the virtual environment (default: <repo>/.venv)
#   --model PATH    the model the device check (and the service) uses (default: the shipped model)
#   --service       install the systemd unit and start it now and at every boot
#   --opencv        also install OpenCV (the `camera` extra), for USB webcams
#   --no-apt        do not call apt-get (install python3-venv / python3-picamera2 yourself)
#   --any-os        try anyway on an OS other than Raspberry Pi OS / Debian bookworm or trixie
#   --dry-run       check the platform and print the steps without running them
#   -h, --help      this text
#
# Exit status: 0 installed, 1 a step failed, 2 unsupported OS or bad option, 3 unsupported CPU/userland.
# For tests, EDGEKIT_OS_RELEASE (a file), EDGEKIT_UNAME_M, EDGEKIT_DPKG_ARCH, EDGEKIT_DEVICE_MODEL
# (a file) and EDGEKIT_SYSTEM_NUMPY (a version, or empty for none) replace /etc/os-release,
# `uname -m`, `dpkg --print-architecture`, /proc/device-tree/model and the numpy apt installed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="$REPO/.venv"
MODEL=""
SERVICE=0
OPENCV=0
APT=1
ANY_OS=0
DRY_RUN=0
SUPPORTED_CODENAMES="bookworm trixie"
TOKEN_FILE=/etc/edgekit/token

say() { printf 'install-pi: %s\n' "$*"; }
die() { local code=$1; shift; printf 'install-pi: error: %s\n' "$*" >&2; exit "$code"; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
# Run a command, or only print it with --dry-run.
run() {
    if [ "$DRY_RUN" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}
as_root() {
    if [ "$(id -u)" = 0 ]; then run "$@"; else run sudo "$@"; fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --venv) [ $# -ge 2 ] || die 2 "--venv needs a directory"; VENV=$2; shift ;;
        --model) [ $# -ge 2 ] || die 2 "--model needs a path"; MODEL=$(realpath -m "$2"); shift ;;
        --service) SERVICE=1 ;;
        --opencv) OPENCV=1 ;;
        --no-apt) APT=0 ;;
        --any-os) ANY_OS=1 ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) usage; exit 0 ;;
        *) die 2 "unknown option '$1' (see --help)" ;;
    esac
    shift
done
[ -f "$REPO/pyproject.toml" ] || die 1 "run this script from a clone of edgekit (no pyproject.toml in $REPO)"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac

# -- 1. platform -------------------------------------------------------------------------
OS_RELEASE=${EDGEKIT_OS_RELEASE:-/etc/os-release}
[ -r "$OS_RELEASE" ] || die 2 "cannot read $OS_RELEASE: this installer is for Raspberry Pi OS (Debian) bookworm or trixie"
# shellcheck disable=SC1090  # the file is chosen at run time
OS_ID=$(. "$OS_RELEASE"; echo "${ID:-}")
# shellcheck disable=SC1090
OS_LIKE=$(. "$OS_RELEASE"; echo "${ID_LIKE:-}")
# shellcheck disable=SC1090
OS_CODENAME=$(. "$OS_RELEASE"; echo "${VERSION_CODENAME:-}")
# shellcheck disable=SC1090
OS_NAME=$(. "$OS_RELEASE"; echo "${PRETTY_NAME:-${ID:-unknown}}")
KERNEL_ARCH=${EDGEKIT_UNAME_M:-$(uname -m)}
if [ -n "${EDGEKIT_DPKG_ARCH:-}" ]; then
    USER_ARCH=$EDGEKIT_DPKG_ARCH
elif command -v dpkg >/dev/null 2>&1; then
    USER_ARCH=$(dpkg --print-architecture)
else
    USER_ARCH=$KERNEL_ARCH
fi
DEVICE_MODEL_FILE=${EDGEKIT_DEVICE_MODEL:-/proc/device-tree/model}
DEVICE=""
[ -r "$DEVICE_MODEL_FILE" ] && DEVICE=$(tr -d '\0' < "$DEVICE_MODEL_FILE")
say "device: ${DEVICE:-not a Raspberry Pi (no $DEVICE_MODEL_FILE)}; OS: $OS_NAME; userland: $USER_ARCH; kernel: $KERNEL_ARCH"

debian_family=0
case " $OS_ID $OS_LIKE " in *" debian "*|*" raspbian "*) debian_family=1 ;; esac
supported_codename=0
case " $SUPPORTED_CODENAMES " in *" $OS_CODENAME "*) [ -n "$OS_CODENAME" ] && supported_codename=1 ;; esac
if [ "$debian_family" != 1 ] || [ "$supported_codename" != 1 ]; then
    msg="unsupported OS: $OS_NAME. This installer supports Raspberry Pi OS (64-bit) or Debian, release bookworm (12) or trixie (13)"
    [ "$ANY_OS" = 1 ] || die 2 "$msg; pass --any-os to try anyway (any 64-bit Linux with Python 3.10-3.13 can run: pip install '.[edge,serve]')"
    say "warning: $msg; continuing because of --any-os"
fi

case "$USER_ARCH:$KERNEL_ARCH" in
    armhf:*|armel:*|*:armv7l|*:armv6l|*:armv8l)
        extra=""
        [ "$KERNEL_ARCH" = aarch64 ] && extra=" (the kernel is 64-bit, but the installed system is 32-bit)"
        die 3 "32-bit ARM userland ($USER_ARCH)$extra: edgekit's TFLite runtime, ai-edge-litert, publishes wheels for 64-bit ARM (aarch64) only, so it cannot be installed here. Install Raspberry Pi OS (64-bit) with Raspberry Pi Imager (Pi 3, 4, 5 and Zero 2 W are 64-bit capable; Pi 1, 2 v1.1 and Zero/Zero W are not) and run this again." ;;
    arm64:*|aarch64:*) ;;
    amd64:*|x86_64:*) say "note: not an ARM board; installing anyway (the runner works on any 64-bit Debian)" ;;
    *) die 3 "unsupported CPU architecture: userland $USER_ARCH, kernel $KERNEL_ARCH; the runner needs 64-bit ARM (aarch64) or x86-64" ;;
esac

command -v python3 >/dev/null 2>&1 || [ "$DRY_RUN" = 1 ] || die 1 "python3 is missing: sudo apt install python3"
PY_VERSION=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo unknown)
case "$PY_VERSION" in
    3.10|3.11|3.12|3.13) ;;
    *) [ "$DRY_RUN" = 1 ] || die 1 "python3 is $PY_VERSION; edgekit needs Python 3.10 to 3.13" ;;
esac

# -- 2. apt packages -----------------------------------------------------------------------
missing=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if [ "$APT" = 1 ] && command -v apt-get >/dev/null 2>&1; then
    python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
    # Raspberry Pi OS's camera stack; plain Debian has no such package, and that is fine.
    if ! installed python3-picamera2 && apt-cache show python3-picamera2 >/dev/null 2>&1; then
        missing+=(python3-picamera2)
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing apt packages: ${missing[*]}"
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
elif [ "$APT" = 1 ]; then
    say "note: no apt-get; make sure python3-venv (and python3-picamera2 for a camera module) are installed"
fi

# -- 3. virtual environment and the runner ---------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV (with --system-site-packages, so apt's picamera2 and libcamera are usable)"
    run python3 -m venv --system-site-packages "$VENV"
fi
VPY="$VENV/bin/python"
extras=edge,serve  # the runner and its web page
[ "$OPENCV" = 1 ] && extras=edge,serve,camera
constraints=()
# apt's picamera2 pulls in simplejpeg (and python3-opencv, if present) built against apt's numpy.
# On bookworm that is numpy 1.24: a numpy 2 in the venv would shadow it and make those modules fail
# to import ("numpy.dtype size changed"). Keep numpy 1.x then; the runner works with either.
if [ -n "${EDGEKIT_SYSTEM_NUMPY+set}" ]; then
    system_numpy=$EDGEKIT_SYSTEM_NUMPY
elif [ "$DRY_RUN" = 1 ] && [ ! -x "$VPY" ]; then
    system_numpy=$(python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)
else
    system_numpy=$("$VPY" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)
fi
if [ "${system_numpy%%.*}" = 1 ]; then
    say "keeping numpy < 2: apt's numpy $system_numpy is what the camera stack was built against"
    CONSTRAINTS_FILE=$(mktemp)
    trap 'rm -f "$CONSTRAINTS_FILE"' EXIT
    echo 'numpy<2' > "$CONSTRAINTS_FILE"
    constraints=(-c "$CONSTRAINTS_FILE")
fi
# A plain (not editable) install: the wheel carries the model, the web page and the deploy files.
# pip always reinstalls from a directory, so running this again after `git pull` updates the runner.
say "installing the runner: pip install '.[$extras]'"
run "$VPY" -m pip install --disable-pip-version-check "${REPO}[${extras}]" ${constraints[@]+"${constraints[@]}"} \
    || die 1 "pip could not install the runner (see above); on a 32-bit or non-ARM64 system there are no ai-edge-litert wheels"

# -- 4. device check -------------------------------------------------------------------------
check=("$VPY" "$REPO/edge_runner/deploy/device_check.py")
[ -n "$MODEL" ] && check+=(--model "$MODEL")
say "checking the device"
run "${check[@]}" || die 1 "the device check failed (above): the runner is installed but cannot classify with this model"

# -- 5. systemd service ----------------------------------------------------------------------
if [ "$SERVICE" = 1 ]; then
    command -v systemctl >/dev/null 2>&1 || die 1 "--service needs systemd (no systemctl here)"
    [ "$DRY_RUN" = 1 ] || "$VPY" -c 'import flask, waitress' 2>/dev/null \
        || die 1 "the web page's libraries (Flask, waitress) are not importable in $VENV; the service could not start"
    service_user=${SUDO_USER:-$(id -un)}
    service_group=$(id -gn "$service_user")
    unit=/etc/systemd/system/edgekit.service

    # The access token: every page, API call, stream and snapshot needs it (only /healthz is open).
    # Made once; a re-run keeps it, so phones and scripts that know it keep working.
    if [ -e "$TOKEN_FILE" ]; then
        say "keeping the access token in $TOKEN_FILE (see it with: sudo cat $TOKEN_FILE)"
    else
        say "generating the access token in $TOKEN_FILE (readable by root and group $service_group only)"
        as_root install -d -m 0750 -o root -g "$service_group" "$(dirname "$TOKEN_FILE")"
        # Created empty with its final owner and mode first, so the token is never in a world-readable file.
        as_root install -m 0640 -o root -g "$service_group" /dev/null "$TOKEN_FILE"
        if [ "$DRY_RUN" = 1 ]; then
            printf '+ write a new token to %s\n' "$TOKEN_FILE"
        else
            token=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
            printf '%s\n' "$token" | as_root tee "$TOKEN_FILE" >/dev/null
            say "the access token of the web page and API (shown only now; later: sudo cat $TOKEN_FILE):"
            printf '\n    %s\n\n' "$token"
            say "a browser asks for it once (or open http://<this Pi>:8000/?token=TOKEN); scripts send 'Authorization: Bearer TOKEN'"
            unset token
        fi
    fi
    say "installing $unit (runs as $service_user: python -m edge_runner serve --camera)"
    rendered=$(sed -e "s|@USER@|$service_user|g" -e "s|@REPO@|$REPO|g" -e "s|@VENV@|$VENV|g" \
        "$REPO/edge_runner/deploy/edgekit.service")
    defaults=$(
        echo "# Arguments for \`python -m edge_runner serve --camera\` (see: $VPY -m edge_runner serve --help)."
        echo "# --host 0.0.0.0 opens the page to the local network; use 127.0.0.1 to keep it on this Pi."
        echo "EDGEKIT_SERVE_ARGS=\"--host 0.0.0.0 --port 8000${MODEL:+ --model $MODEL}\""
    )
    token_setting=$(
        echo "# The file holding the access token that every page and API call needs (only /healthz is open)."
        echo "EDGEKIT_TOKEN_FILE=$TOKEN_FILE"
    )
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ write %s:\n%s\n' "$unit" "$rendered"
        [ -e /etc/default/edgekit ] || printf '+ write /etc/default/edgekit:\n%s\n%s\n' "$defaults" "$token_setting"
    else
        printf '%s\n' "$rendered" | as_root tee "$unit" >/dev/null
        if [ ! -e /etc/default/edgekit ]; then
            printf '%s\n%s\n' "$defaults" "$token_setting" | as_root tee /etc/default/edgekit >/dev/null
        elif ! grep -q '^EDGEKIT_TOKEN_FILE=' /etc/default/edgekit; then
            printf '%s\n' "$token_setting" | as_root tee -a /etc/default/edgekit >/dev/null
        fi
    fi
    as_root systemctl daemon-reload
    as_root systemctl enable --now edgekit.service
    say "service started: systemctl status edgekit; logs: journalctl -u edgekit -f; settings: /etc/default/edgekit"
fi

say "done. Classify a photo:  $VPY -m edge_runner photo.jpg${MODEL:+ --model $MODEL}"
say "      the camera:        $VPY -m edge_runner --camera${MODEL:+ --model $MODEL}"
if [ "$SERVICE" = 1 ]; then
    token_hint="--token-file $TOKEN_FILE"
else
    token_hint="--token-file FILE  (FILE: a secret of 16+ characters, e.g. from: python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
fi
say "      the web page:      $VPY -m edge_runner serve --camera --host 0.0.0.0${MODEL:+ --model $MODEL} $token_hint"
