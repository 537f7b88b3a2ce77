# Sourced by test.sh and fuzz.sh: installs what the tests need when it is
# missing (as root, with apt), or says what to install and exits.
#
# The tests start their own redis-server and PostgreSQL processes on free
# loopback ports (internal/redisproc, internal/pgproc; redis-cli joins some
# redis-servers into a Redis Cluster), open the Temporal Web UI in headless
# Chromium, and check the exported metrics and alert rules with promtool
# (Debian package prometheus), so those must be installed; no system service
# needs to run. Debian keeps PostgreSQL's initdb off the PATH.
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "scripts: the tests need ${need[*]}; install them (Debian: sudo apt-get install -y ${need[*]}) and run this again" >&2
    exit 1
  fi
fi

# The TypeScript client's checks (clients/typescript, run by its Go test)
# need Node.js 20.19 or later with npm, for Redocly CLI; Debian bookworm's
# own nodejs is 18, so it is not installed from apt here.
node_major_minor=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+)\.([0-9]+).*/\1 \2/')
if ! command -v npm >/dev/null 2>&1 || [ -z "$node_major_minor" ] ||
  ! { read -r major minor <<<"$node_major_minor"; [ "$major" -gt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -ge 19 ]; }; }; then
  echo "scripts: the tests need Node.js 20.19 or later and npm (found: $(node --version 2>/dev/null || echo none)); install them from https://nodejs.org or NodeSource and run this again" >&2
  exit 1
fi
