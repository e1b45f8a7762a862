#!/usr/bin/env bash
# What can be checked of the images without pulling a base image (`just image-smoke`):
# build both binaries statically (glibc, +crt-static), put each into a `FROM scratch`
# image with buildah, as the Dockerfile's runtime stages do (CA bundle, numeric non-root
# user, no shell), and run `--version` in it with podman (or, where the sandbox forbids
# starting containers, in a chroot of the image's root filesystem as its user). The Dockerfile's build stage (the
# rust:alpine image) needs network access and is not exercised here.
# Without buildah or podman it prints SKIPPED and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in buildah podman; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIPPED image-smoke: '$tool' is not installed (apt-get install -y buildah podman)"
        exit 0
    fi
done
# SMOKE_PROFILE=dev builds faster (a debug build is enough to see the image run).
profile="${SMOKE_PROFILE:-release}"
target_dir="${SMOKE_TARGET_DIR:-target/static}"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --profile "$profile" \
    --target x86_64-unknown-linux-gnu --target-dir "$target_dir" \
    -p tollgate-operator -p tollgate-gateway
[[ "$profile" == dev ]] && profile=debug
bin="$target_dir/x86_64-unknown-linux-gnu/$profile"
version="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')"

# Runs the image's entrypoint with ARGS as its user. Where the container runtime may not
# start containers (a sandbox that forbids setrlimit), runs the entrypoint in a chroot of the
# image's root filesystem as the image's user instead: the same files, no isolation.
run_image() {
    local image="$1"; shift
    local entrypoint user out
    if out="$(podman run --rm --network=none "$image" "$@" 2>&1)"; then
        echo "$out"
        return
    fi
    echo "note: podman run failed ($(tail -1 <<<"$out")); using chroot into the image" >&2
    entrypoint="$(buildah inspect --format '{{index .OCIv1.Config.Entrypoint 0}}' "$image")"
    user="$(buildah inspect --format '{{.OCIv1.Config.User}}' "$image")"
    local ctr mnt
    ctr="$(buildah from "$image")"
    mnt="$(buildah mount "$ctr")"
    chroot --userspec="$user" "$mnt" "$entrypoint" "$@"
    buildah umount "$ctr" >/dev/null
    buildah rm "$ctr" >/dev/null
}
for name in operator gateway; do
    ctr="$(buildah from scratch)"
    buildah copy "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
    buildah copy --chmod 0755 "$ctr" "$bin/tollgate-$name" "/usr/local/bin/tollgate-$name" >/dev/null
    buildah config --user 65532:65532 --entrypoint "[\"/usr/local/bin/tollgate-$name\"]" \
        --label org.opencontainers.image.title="tollgate-$name" \
        --label org.opencontainers.image.version="$version" "$ctr"
    buildah commit --quiet "$ctr" "localhost/tollgate-$name:smoke" >/dev/null
    buildah rm "$ctr" >/dev/null
    out="$(run_image "localhost/tollgate-$name:smoke" --version)"
    echo "tollgate-$name image: $out"
    [[ "$out" == "tollgate-$name $version" ]]
    user="$(buildah inspect --format '{{.OCIv1.Config.User}}' "localhost/tollgate-$name:smoke")"
    [[ "$user" == "65532:65532" ]]
done
# The gateway image serves the quickstart (mock provider) from a rendered config directory.
dir="$(mktemp -d)"
"$bin/tollgate-operator" render -f config/samples/quickstart.yaml --out-dir "$dir/tollgate" >/dev/null 2>&1
chmod -R a+rX "$dir"
read -r api admin < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
args=(serve --config-dir /etc/tollgate --listen "127.0.0.1:$api" --admin-listen "127.0.0.1:$admin")
image=localhost/tollgate-gateway:smoke
ctr="" mnt="" pid="" name="tollgate-smoke-$$"
stop() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    podman rm -f "$name" >/dev/null 2>&1 || true
    if [[ -n "$ctr" ]]; then
        umount "$mnt/dev" 2>/dev/null || true
        buildah umount "$ctr" >/dev/null; buildah rm "$ctr" >/dev/null
    fi
    rm -rf "$dir"
}
trap stop EXIT
if ! podman run -d --name "$name" --network=host -v "$dir/tollgate:/etc/tollgate:ro" "$image" "${args[@]}" >/dev/null 2>&1; then
    # As above: no container runtime here; the image's files in a chroot, with /dev as a
    # runtime would provide it.
    ctr="$(buildah from "$image")"
    mnt="$(buildah mount "$ctr")"
    mkdir -p "$mnt/etc/tollgate" "$mnt/dev"
    cp -a "$dir/tollgate/." "$mnt/etc/tollgate/"
    mount --bind /dev "$mnt/dev"
    chroot --userspec=65532:65532 "$mnt" /usr/local/bin/tollgate-gateway "${args[@]}" >/dev/null 2>&1 &
    pid=$!
fi
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break
    sleep 0.2
done
answer="$(curl -sf "http://127.0.0.1:$api/v1/chat/completions" -H 'content-type: application/json' \
    -d '{"model":"demo","messages":[{"role":"user","content":"hi"}]}')"
grep -q "Tollgate's mock provider" <<<"$answer"
echo "tollgate-gateway image: serves the quickstart as 65532:65532"
echo "image-smoke: both scratch images run --version as 65532:65532; the gateway serves"
