#!/usr/bin/env bash
# Prepare a fresh Debian machine: Debian packages, then the virtual environment at .venv.
# Usage: scripts/setup.sh run|test   ("test" adds what the test suite needs)
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-run}"

apt_pkgs=(mosquitto mosquitto-clients socat libsystemd-dev pkg-config gcc python3-venv openssl tzdata)
if [[ "$purpose" == "test" ]]; then
  # fonts-wqy-microhei: Chinese glyphs for the technician page's screenshots in headless Chromium
  apt_pkgs+=(chromium chromium-driver fonts-wqy-microhei systemd nut-server nut-client)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian mosquitto service is not needed: tests and the simulated site start their own brokers.

PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
extras="systemd"
# s7, opcua: the drivers' tests run a real snap7 server and a real asyncua server (sites with
# those PLCs install the extra too)
[[ "$purpose" == "test" ]] && extras="systemd,test,s7,opcua"
echo "setup: installing headframe[$extras] into .venv"
.venv/bin/python -m pip install -q -e ".[$extras]" 2>&1 | grep -v "^WARNING: Location" || true
if [[ "$purpose" == "test" ]]; then
  # The independent Sparkplug B decoder of the tests (tests/support/sparkplug_host.py). It pins
  # paho-mqtt<2 for its own client, which the tests do not use: --no-deps keeps our paho 2.
  .venv/bin/python -m pip install -q --no-deps "pysparkplug==0.6.1" 2>&1 | grep -v "^WARNING: Location" || true
fi
.venv/bin/python -c "import agent, buffer, config, drivers, vision" 
