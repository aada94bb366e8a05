#!/bin/bash
# Hyperparameter sweep on the real MeLi sample: one line of a round file is a run name and its scripts/train.py
# flags; each run prints its name, final validation/test balanced accuracy, test accuracy, training seconds and
# the validation balanced accuracy after every epoch. Runs of a round go in parallel (here 5 or 10 on one GPU,
# one at a time on a CPU):
#
#     xargs -P 5 -L 1 bench/sweep/run.sh < bench/sweep/round1.txt
#     OMP_NUM_THREADS=1 xargs -P 10 -L 1 bench/sweep/run.sh < bench/sweep/round2.txt
#     xargs -P 1 -L 1 bench/sweep/run.sh < bench/sweep/round3.txt
#     OMP_NUM_THREADS=1 xargs -P 2 -L 1 bench/sweep/run.sh < bench/sweep/round4.txt
#     OMP_NUM_THREADS=1 xargs -P 2 -L 1 bench/sweep/run.sh < bench/sweep/round5.txt
#     OMP_NUM_THREADS=1 xargs -P 2 -L 1 bench/sweep/run.sh < bench/sweep/round6.txt
#     OMP_NUM_THREADS=1 xargs -P 2 -L 1 bench/sweep/run.sh < bench/sweep/round7.txt
#     OMP_NUM_THREADS=1 xargs -P 2 -L 1 bench/sweep/run.sh < bench/sweep/round8.txt
#     OMP_NUM_THREADS=2 xargs -P 1 -L 1 bench/sweep/run.sh < bench/sweep/round9.txt
#     OMP_NUM_THREADS=2 xargs -P 1 -L 1 bench/sweep/run.sh < bench/sweep/round10.txt
#     OMP_NUM_THREADS=2 xargs -P 1 -L 1 bench/sweep/run.sh < bench/sweep/round11.txt
#     OMP_NUM_THREADS=2 xargs -P 1 -L 1 bench/sweep/run.sh < bench/sweep/round12.txt
#
# Rounds 6 to 11 read outputs/title-vectors-300.txt: python scripts/word_vectors.py --data_dir ../shared/data/meli2019-es --output outputs/title-vectors-300.txt
#
# DATA_DIR (default ../shared/data/meli2019-es) and SWEEP_DIR (default outputs/sweep) set where. A run whose folder
# already holds all_results.json is not trained again, only printed.
data_dir=${DATA_DIR:-../shared/data/meli2019-es}
sweep_dir=${SWEEP_DIR:-outputs/sweep}
name=$1; shift
mkdir -p "$sweep_dir"
[ -f "$sweep_dir/$name/all_results.json" ] ||
    python3 scripts/train.py "$@" --data_dir "$data_dir" --output_dir "$sweep_dir/$name" --disable_tqdm true \
        > "$sweep_dir/$name.log" 2>&1
python3 - "$sweep_dir/$name" <<'PY' || tail -5 "$sweep_dir/$name.log"
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
results = json.loads((run / "all_results.json").read_text())
state = json.loads((run / "trainer_state.json").read_text())
curve = [round(e["eval_balanced_accuracy"], 4) for e in state["log_history"] if "eval_balanced_accuracy" in e]
print(
    run.name, "val", round(results["eval_balanced_accuracy"], 4), "test", round(results["test_balanced_accuracy"], 4),
    "acc", round(results["test_accuracy"], 4), "train_s", round(results["train_runtime"]), "curve", curve, flush=True,
)
PY
