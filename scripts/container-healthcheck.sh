#!/usr/bin/env bash
# The image's HEALTHCHECK (installed as /usr/local/bin/tfcat-healthcheck). In a
# container running `tfcat serve`, it asks the server whether it is ready
# (GET /v2/health/ready, KServe's readiness, on the --addr that serve was given,
# through bash's /dev/tcp: the image has no curl) and is healthy when every
# model it serves has a version to answer with — whatever the models are named,
# and for --model, --model-base-path and --model-config-file alike. In a container running any other tfcat command (train, predict, ...)
# there is no server to ask, and it reports healthy.
set -euo pipefail

# The serve process: the first whose argv[0] is tfcat and whose command (the
# first argument that is not a flag) is serve.
serve_args=()
for cmdline in /proc/[0-9]*/cmdline; do
	args=()
	while IFS= read -r -d '' a; do args+=("$a"); done <"$cmdline" 2>/dev/null || continue
	[[ ${#args[@]} -gt 1 && ${args[0]##*/} == tfcat ]] || continue
	cmd=
	for a in "${args[@]:1}"; do
		[[ $a == -* ]] && continue
		cmd=$a
		break
	done
	if [[ $cmd == serve ]]; then
		serve_args=("${args[@]:1}")
		break
	fi
done
if [[ ${#serve_args[@]} -eq 0 ]]; then
	echo "no tfcat serve in this container: nothing to check"
	exit 0
fi

addr=127.0.0.1:8501
for ((i = 0; i < ${#serve_args[@]}; i++)); do
	a=${serve_args[i]}
	case "$a" in
	--addr | -addr) addr=${serve_args[i + 1]:-$addr} ;;
	--addr=* | -addr=*) addr=${a#*=} ;;
	esac
done
host=${addr%:*}
port=${addr##*:}
host=${host#[}
host=${host%]}
case "$host" in
"" | 0.0.0.0) host=127.0.0.1 ;;
::) host=::1 ;;
esac

if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
	echo "tfcat serve: nothing answers on $host:$port" >&2
	exit 1
fi
printf 'GET /v2/health/ready HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
reply=$(timeout 4 cat <&3) || true
exec 3<&-
status=${reply%%$'\r'*}
if [[ $status != "HTTP/1."?" 200 "* ]]; then
	echo "tfcat serve on $host:$port is not ready: ${status:-no reply}" >&2
	exit 1
fi
echo "tfcat serve on $host:$port: ready"
