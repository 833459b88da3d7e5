#!/usr/bin/env bash
# One-time set-up on a fresh machine: Debian packages (ffmpeg, chromium, an RTSP server, nginx, Prometheus, PostgreSQL for tests), then `npm ci`
# (which builds Osprey through the `prepare` script). Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ffmpeg chromium fonts-dejavu-core
  # streams tests: a real RTSP server (GStreamer's gst-rtsp-server through Debian's /usr/bin/python3 + python3-gi)
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  # streams tests: a real MQTT broker for the MQTT event sink (and Sparkplug B)
  mosquitto
  # OPC UA tests: X509 user certificates made with openssl
  openssl
  # deploy tests (test/deploy): nginx in front of replicas, Prometheus + promtool (Debian's prometheus package)
  nginx prometheus
  # streams tests: a real PostgreSQL server (initdb + pg_ctl in a temp folder) for the shared event store and leases
  postgresql)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# onnxruntime-node's postinstall only downloads the CUDA execution-provider libraries from NuGet (hundreds of MB,
# unused on a CPU machine; `osprey gpu install` fetches them sha256-checked where a GPU is). npm 11 skips it through
# package.json "allowScripts"; this variable, which the script itself reads, skips it with npm versions without that.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund
else
  npm run -s build
fi
