# Sourced by scripts/test and scripts/bench: install node-opcua into tests/support/node_opcua.
# The adapter tests against a second OPC UA stack and the load server of
# bench/agent_footprint.py run node-opcua under Node.js.

# ensure_node_opcua WHAT: npm ci installs the versions of the lock file, and is skipped while
# node_modules is as new as that file. WHAT describes what happens without it, in the warnings.
ensure_node_opcua() {
    local without=$1
    local dir=tests/support/node_opcua
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "!! Node.js or npm is not installed: $without" >&2
        return
    fi
    if [ -f "$dir/node_modules/.package-lock.json" ] \
        && ! [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        return
    fi
    echo "== installing node-opcua into $dir/node_modules"
    npm ci --prefix "$dir" --no-audit --no-fund || echo "!! npm ci failed: $without" >&2
}
