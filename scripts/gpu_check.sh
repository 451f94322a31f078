#!/usr/bin/env bash
# The GPU path end to end, on any GPU machine, in a few minutes: a short sweep with
# launcher.devices=auto and launcher.trials_per_device=2 (two trials share each GPU), then per trial
# the GPU it was given, the GPU its worker saw and that it trained on CUDA, and the GPU utilisation
# nvidia-smi sampled during the sweep.
#
#   scripts/gpu_check.sh [EXTRA OVERRIDES...]     # exit 0: every trial trained on CUDA on its own GPU
#
# Installs nothing: it uses the project's Python ($PAI_SWEEP_PYTHON, else .venv/bin/python, else python3).
# Exits 1 when a trial ran on the wrong GPU, on CPU, or failed; 2 (one line) when there is no GPU to check.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PAI_SWEEP_PYTHON:-}
[[ -n $PY ]] || { [[ -x $ROOT/.venv/bin/python ]] && PY=$ROOT/.venv/bin/python; } || PY=python3
die() { echo "gpu_check: $*" >&2; exit 2; }

command -v nvidia-smi >/dev/null 2>&1 || die "no GPU: nvidia-smi is not on PATH (run this on a machine with an NVIDIA GPU and its driver)"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
((gpus > 0)) || die "no GPU: nvidia-smi -L lists none ($(nvidia-smi -L 2>&1 | head -1))"
if [[ -n ${CUDA_VISIBLE_DEVICES+x} ]]; then
    visible=$(tr ',' '\n' <<<"$CUDA_VISIBLE_DEVICES" | grep -cv '^ *$\|^-1$' || true)
    ((visible > 0)) || die "no GPU: CUDA_VISIBLE_DEVICES='$CUDA_VISIBLE_DEVICES' hides every GPU (unset it)"
    gpus=$visible
fi
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
    || die "no GPU for torch: nvidia-smi lists $gpus GPU(s) but torch.cuda.is_available() is False (a CPU-only torch build, or a driver older than its CUDA)"

work=$(mktemp -d "${TMPDIR:-/tmp}/pai-gpu-check.XXXXXX")
in_flight=$((gpus * 2))
trials=$((in_flight * 2))
echo "gpu_check: $gpus GPU(s), 2 trials per GPU, $trials trials; sweep in $work" >&2

nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 >"$work/util.csv" 2>/dev/null &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT

set +e
(cd "$work" && timeout 270 "$PY" -m pai_sweep model=mlp "model.hidden=[512,512]" dendrites=linear_only \
    train.max_epochs=3 train.device=auto data.limit=1000 \
    "sweep.space={dendrites.n_epochs_to_switch:{type:int,low:1,high:2}}" sweep.n_trials=$trials \
    sweep.in_flight=$in_flight sweep.derived_trials=false sweep.rule_trials=false sweep.check_first=false \
    tracking=off launcher=local launcher.devices=auto launcher.trials_per_device=2 "sweep.dir=$work/sweep" \
    "$@" >"$work/sweep.log" 2>&1)
code=$?
set -e
kill $sampler 2>/dev/null || true
((code == 0)) || echo "gpu_check: the sweep exited with $code; its output: $work/sweep.log" >&2

"$PY" - "$work" <<'EOF'
import json, sys
from collections import defaultdict
from pathlib import Path

work = Path(sys.argv[1])
bad = []
print(f"{'trial':>5}  {'given GPU':>9}  {'worker saw':>10}  {'trained on':>10}  {'shared with':>11}  {'GPU name':<24} status")
for trial in sorted((work / "sweep" / "trials").glob("*"), key=lambda p: int(p.name)):
    launch = json.loads((trial / "launch.json").read_text()) if (trial / "launch.json").exists() else {}
    result = json.loads((trial / "result.json").read_text()) if (trial / "result.json").exists() else {}
    extra = {**result, **(result.get("extra") or {})}
    given, saw, on = str(launch.get("device")), str(extra.get("cuda_visible_devices")), str(extra.get("device"))
    print(f"{trial.name:>5}  {given:>9}  {saw:>10}  {on:>10}  {launch.get('shares_device_with', '?'):>11}  "
          f"{str(extra.get('gpu_name', '-')):<24} {result.get('status', 'no result.json')}: {str(result.get('reason', ''))[:60]}")
    if not on.startswith("cuda"):
        bad.append(f"trial {trial.name} trained on {on}, not CUDA")
    elif saw != given:
        bad.append(f"trial {trial.name} was given GPU {given} but its worker saw CUDA_VISIBLE_DEVICES={saw}")
    if result.get("status") != "complete":
        bad.append(f"trial {trial.name} {result.get('status', 'left no result.json')}: {result.get('reason', '')}")
util, mem = defaultdict(list), defaultdict(list)
for line in (work / "util.csv").read_text().splitlines():
    parts = [p.strip() for p in line.split(",")]
    if len(parts) == 3 and all(p.replace(".", "").isdigit() for p in parts):
        util[parts[0]].append(float(parts[1]))
        mem[parts[0]].append(float(parts[2]))
for gpu in sorted(util):
    u = util[gpu]
    print(f"GPU {gpu}: utilisation mean {sum(u) / len(u):.0f}%, max {max(u):.0f}% over {len(u)} samples; memory max {max(mem[gpu]):.0f} MiB")
if not util:
    print("GPU utilisation: nvidia-smi gave no samples")
if not list((work / "sweep" / "trials").glob("*")):
    bad.append("no trial ran (see sweep.log)")
for line in bad:
    print(f"gpu_check: FAIL: {line}", file=sys.stderr)
print(f"gpu_check: {'FAIL' if bad else 'OK'} ({work})", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
