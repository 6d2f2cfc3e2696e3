#!/usr/bin/env bash
# End-to-end tests of `mpirun -np 2 earlybert ...` (docs/distributed.md), one case per invocation:
#   mpi_cli_test.sh CASE EARLYBERT DATA_DIR WORK_DIR MPIEXEC
# A case prints what it checks and exits non-zero at the first failure. Every run uses one thread per
# process, so that two processes fit two cores.
set -euo pipefail
export LC_ALL=C
case_name=$1 earlybert=$2 data=$3 work=$4/mpi-$1 mpiexec=$5
rm -rf "$work" && mkdir -p "$work" && cd "$work"
# Open MPI refuses to run as root, or more processes than cores, unless told.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none  # containers often forbid cross-memory attach

fail() { echo "FAIL: $*" >&2; exit 1; }
# Timing fields out: a step line from tokens_per_s on (elapsed_s and the communication times follow it).
# Every timing field: tokens_per_s to the end of a step line, and any field named for wall time.
untimed() { sed -e 's/"tokens_per_s".*//' -e 's/"[a-z_]*wall[a-z_]*":[^,]*,//g' "$1"; }
steps_in() { [[ -e $1 ]] && grep -c '"event":"step"' "$1" || true; }

head -n 193 "$data/sst2/train_subset.tsv" > train.tsv  # 192 examples: 12 steps of 16
head -n 101 "$data/sst2/dev.tsv" > dev.tsv
vocab=$data/vocab/bert-base-uncased-vocab.txt
two=("$mpiexec" -np 2)
tiny=("$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --threads 1 --shape tiny --seed 7)
finetune=("${tiny[@]}" --batch 16)
eb=("${finetune[@]}" --epochs 4 --earlybert --eb-interval 2 --eb-window 3)

# kill_rank_and_resume NAME TARGET COMMAND...: runs COMMAND on two processes into NAME_reference, then
# again into NAME, kills the process of rank 1 with SIGKILL once TARGET steps are in the metrics (the
# whole job must end, non-zero, without hanging), resumes with two processes, and compares the two runs'
# checkpoints and metrics (but for timing fields).
RANDOM=${EARLYBERT_KILL_SEED:-$$}
kill_rank_and_resume() {
  local name=$1 target=$2 status=0 launcher victim pid; shift 2
  echo "$name: kill seed ${EARLYBERT_KILL_SEED:-$$}"
  "${two[@]}" "$@" --out ${name}_reference --metrics ${name}_reference.jsonl > /dev/null 2>&1
  "${two[@]}" "$@" --out $name --metrics $name.jsonl --checkpoint-every 3 > $name.out 2> $name.err & launcher=$!
  while kill -0 $launcher 2> /dev/null && (( $(steps_in $name.jsonl) + 0 < target )); do sleep 0.01; done
  # The process of rank 1: a child of the launcher whose environment says so.
  victim=
  for pid in $(pgrep -f -- "--out $name " || true); do
    tr '\0' '\n' < /proc/$pid/environ 2> /dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$pid
  done
  [[ -n $victim ]] || fail "$name: no process of rank 1 found (the run ended before step $target?)"
  kill -9 "$victim"
  timeout 120 tail --pid=$launcher -f /dev/null || fail "$name: the job did not end within 120 s of a process's death"
  wait $launcher || status=$?
  [[ $status -ne 0 ]] || fail "$name: the job exited 0 after a process was killed"
  echo "$name: rank 1 killed after step $(steps_in $name.jsonl); the job exited with $status"
  "${two[@]}" "$@" --out $name --metrics $name.jsonl --checkpoint-every 3 --resume > /dev/null 2> $name.resumed.err
  grep -q "resuming from" $name.resumed.err || fail "$name: no resume: $(cat $name.resumed.err)"
  cmp ${name}_reference/model.safetensors $name/model.safetensors || fail "$name: the resumed run's weights differ"
  diff <(untimed ${name}_reference.jsonl) <(untimed $name.jsonl) || fail "$name: the resumed run's metrics differ"
}

case $case_name in
finetune)
  # Two processes: one checkpoint and one metrics file, written by the lead; the same bits when run
  # again; the same training as one process with --accumulation 2, up to the order of the gradient
  # additions (the dev metrics agree to 3 decimals, the ticket exactly).
  "${two[@]}" "${eb[@]}" --out a --metrics a.jsonl > a.out 2> a.err
  "${two[@]}" "${eb[@]}" --out b --metrics b.jsonl > b.out 2> b.err
  cmp a/model.safetensors b/model.safetensors || fail "two 2-process runs differ"
  diff <(untimed a.jsonl) <(untimed b.jsonl) || fail "metrics differ"
  [[ $(grep -c '^finetune (EarlyBERT' a.out) -eq 1 ]] || fail "the result line is not printed exactly once: $(cat a.out)"
  [[ $(grep -c 'ticket drawn' a.err) -eq 1 ]] || fail "status lines are not printed by the lead alone: $(cat a.err)"
  grep -q '"communication_s":' a.jsonl || fail "no communication time in the step events"
  "${eb[@]}" --accumulation 2 --out single --metrics single.jsonl > single.out 2> /dev/null
  masks() { sed 's/"head_coefficients".*//' "$1"; }  # the ticket, the step and every check's mask (not the coefficients)
  [[ $(masks a/earlybert_ticket.json) == "$(masks single/earlybert_ticket.json)" ]] \
    || fail "the ticket or the mask checks differ from one process with --accumulation 2"
  flops() { grep '"event":"summary"' "$1" | grep -o '"train_flops":[0-9.e+]*' | cut -d: -f2; }
  [[ $(flops a.jsonl) == "$(flops single.jsonl)" ]] || fail "FLOPs $(flops a.jsonl) with 2 processes, $(flops single.jsonl) with one"
  main() { grep '"event":"summary"' "$1" | grep -o '"dev_main":[-0-9.e]*' | cut -d: -f2; }
  awk -v a="$(main a.jsonl)" -v s="$(main single.jsonl)" 'BEGIN { d = a - s; exit !(d < 1e-3 && d > -1e-3) }' \
    || fail "dev accuracy $(main a.jsonl) with 2 processes, $(main single.jsonl) with --accumulation 2"
  echo "2 processes: dev $(main a.jsonl); 1 process, --accumulation 2: dev $(main single.jsonl); tickets identical"
  ;;
pretrain)
  # Masked-LM pre-training, dense and EarlyBERT, on two processes: bit-identical when repeated, with
  # the gradients summed during the backward pass or after it (--overlap off).
  pretrain=("$earlybert" pretrain --corpus "$data/wikitext2/train_head.txt" --vocab "$vocab" --shape tiny --steps 30 --batch 8 \
    --seq 32 --eval-every 10 --eval-sequences 16 --threads 1)
  for mode in dense earlybert; do
    extra=(); [[ $mode == earlybert ]] && extra=(--earlybert --eb-interval 2 --eb-window 3)
    "${two[@]}" "${pretrain[@]}" "${extra[@]}" --out $mode-a --metrics $mode-a.jsonl > /dev/null 2>&1
    "${two[@]}" "${pretrain[@]}" "${extra[@]}" --out $mode-b --overlap off > /dev/null 2>&1
    cmp $mode-a/model.safetensors $mode-b/model.safetensors || fail "pre-training ($mode): two 2-process runs differ (overlap on and off)"
  done
  ;;
kill)
  # One process killed with SIGKILL at a random step ends the whole job (non-zero, no hang); --resume
  # with two processes then ends bit-identical to an uninterrupted run.
  kill_rank_and_resume killed $((4 + RANDOM % 29)) "${eb[@]}"
  ;;
lottery)
  # The lottery methods on two processes, each killed (rank 1) at a random step and resumed: IMP
  # (in level 0 or 1), structured IMP (by magnitude and by greedy selection), RigL, instability analysis
  # (in the trunk or a copy). A kill leaves at least 6 steps to go, so that rank 1 is still there: IMP
  # runs 22 steps (level 1 goes on from the rewind point at step 2), structured IMP and RigL 24 (kills at
  # 4-16), the instability analysis 42 (4-32).
  kill_rank_and_resume imp $((4 + RANDOM % 13)) "${finetune[@]}" --epochs 1 --imp --imp-levels 1 --rewind-step 2
  kill_rank_and_resume simp $((4 + RANDOM % 13)) "${finetune[@]}" --epochs 1 --imp --imp-structures --imp-levels 1 --imp-rate 0.5
  kill_rank_and_resume greedy $((4 + RANDOM % 13)) "${finetune[@]}" --epochs 1 --imp --imp-structures --imp-levels 1 --imp-rate 0.95 \
    --imp-criterion greedy --greedy-examples 2
  kill_rank_and_resume rigl $((4 + RANDOM % 13)) "${finetune[@]}" --epochs 2 --sparsity 0.7 --rigl --rigl-interval 3
  kill_rank_and_resume lmc $((4 + RANDOM % 29)) "${finetune[@]}" --epochs 2 --lmc-step 6 --lmc-points 2
  cmp lmc_reference/lmc.json lmc/lmc.json || fail "the instability path differs after the resume"
  ;;
early-exit)
  # Exits trained jointly, then by self-sampling, on two processes, rank 1 killed at a random step (in
  # either stage; at least 3 of the 10 steps left) and the job resumed bit for bit.
  kill_rank_and_resume ee $((4 + RANDOM % 4)) "$earlybert" finetune --task upos --data "$data/tasks/upos" --vocab "$vocab" --threads 1 --shape tiny \
    --seed 7 --batch 16 --max-seq 64 --steps 5 --self-sampling-steps 5 --early-exit
  ;;
bad-launch)
  # Each bad launch: exit status 1 and one error line, printed by the lead.
  expect_one_error() {
    local fragment=$1; shift
    local status=0
    "$@" > out.txt 2> err.txt || status=$?
    [[ $status -eq 1 ]] || fail "exit status $status, expected 1: $* ($(cat err.txt))"
    [[ $(grep -c '^earlybert ' err.txt) -eq 1 ]] || fail "expected one error line: $(cat err.txt)"
    grep -q -- "$fragment" err.txt || fail "the error lacks '$fragment': $(cat err.txt)"
  }
  expect_one_error "--batch is 15, expected a multiple of the 2 processes x --accumulation 1 = 2" \
    "${two[@]}" "${tiny[@]}" --batch 15 --out x
  expect_one_error "process 1 of 2 was started with other settings than process 0" \
    "$mpiexec" -np 1 "${finetune[@]}" --out x : -np 1 "${finetune[@]}" --out x --lr 1e-4
  expect_one_error "'earlybert demo' runs in one process, but it was started as one of 2" "${two[@]}" "$earlybert" demo --out x
  expect_one_error "missing.tsv" "${two[@]}" "$earlybert" finetune --train missing.tsv --dev dev.tsv --vocab "$vocab" --shape tiny --out x
  # Another MPI's launcher (here its environment, as MPICH's would set it) starts N singletons: refused,
  # by the one numbered 0, and the others say nothing.
  expect_one_error "an MPI launcher started this earlybert as one of 2 processes, but its MPI library sees only this one" \
    env PMI_SIZE=2 PMI_RANK=0 "${finetune[@]}" --out x
  status=0
  env PMI_SIZE=2 PMI_RANK=1 "${finetune[@]}" --out x > out.txt 2> err.txt || status=$?
  [[ $status -eq 1 && ! -s err.txt ]] || fail "the process numbered 1 exited with $status and wrote: $(cat err.txt)"
  # A training state of two processes continues only with two. The run is long (480 steps) so that it is
  # still going when SIGTERM arrives: a run that completes removes its training state.
  interrupted=("${finetune[@]}" --epochs 40 --out interrupted --checkpoint-every 4)
  "${two[@]}" "${interrupted[@]}" > /dev/null 2> interrupted.err & launcher=$!
  while [[ ! -e interrupted/training_state.safetensors ]]; do
    kill -0 $launcher 2> /dev/null || fail "the run ended before its first training state: $(tail -n 2 interrupted.err)"
    sleep 0.01
  done
  kill -TERM $launcher
  wait $launcher || true
  [[ -e interrupted/training_state.safetensors ]] || fail "SIGTERM left no training state: $(tail -n 2 interrupted.err)"
  expect_one_error "2 processes (mpirun -np 2) then, one process now" "${interrupted[@]}" --resume
  ;;
*)
  fail "unknown case '$case_name'"
  ;;
esac
echo "PASS: mpi $case_name"
