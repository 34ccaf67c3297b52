# Sourced by the HTTP shell tests: start `nextcard http` on a free port.
#   http_start OUTDIR ARGS...   sets $pid and $port, or prints FAIL and returns 1
http_start() {
	local dir=$1; shift
	timeout 300 $NC http "$@" --port 0 >"$dir/server.out" 2>"$dir/server.err" &
	pid=$!
	for _ in $(seq 100); do
		grep -q 'listening on' "$dir/server.out" 2>/dev/null && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$dir/server.out")
	if [ -z "$port" ]; then
		echo "FAIL server did not start"; cat "$dir/server.out" "$dir/server.err"
		return 1
	fi
}
