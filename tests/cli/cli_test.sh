#!/usr/bin/env bash
# End-to-end tests of the `earlybert` program on the bundled data, one case per invocation:
#   cli_test.sh CASE EARLYBERT DATA_DIR WORK_DIR
# A case prints what it checks and exits non-zero at the first failure.
set -euo pipefail
export LC_ALL=C  # grep's and bash's character ranges, whatever the machine's locale
case_name=$1 earlybert=$2 data=$3 work=$4/$1
reference=$(cd "$(dirname "$0")/../reference" && pwd)  # PyTorch-written checkpoints (make_reference.py)
rm -rf "$work" && mkdir -p "$work" && cd "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }
# The program's stderr (docs/cli.md, "Messages"): status lines "<subcommand>: ...", notes
# "<subcommand>: note: ...", and on failure one error line "earlybert <subcommand>: ...", the last.
message_line='^(pretrain|finetune|predict|inspect|demo|bench): '
# expect_error "message fragment" command...: the command must exit 1 and write on stderr one error
# line, the last, "earlybert <subcommand>: " and the fragment; every line before it is a status line
# or a note.
expect_error() {
  local fragment=$1; shift
  local status=0 error_line
  "$@" >out.txt 2>err.txt || status=$?
  [[ $status -eq 1 ]] || fail "exit status $status, expected 1: $*"
  error_line=$(tail -n 1 err.txt)
  [[ $error_line =~ ^earlybert\ [a-z]+:\  ]] || fail "the last line is not an error line 'earlybert <subcommand>: ...': $(cat err.txt)"
  [[ $error_line == *"$fragment"* ]] || fail "the error line lacks '$fragment': $error_line"
  [[ $(head -n -1 err.txt | grep -Evc -- "$message_line") -eq 0 ]] \
    || fail "more than one error line (a line that is neither a status line nor a note): $(cat err.txt)"
}

# expect_usage "message fragment" command...: as expect_error, for a command line that cannot be run as
# written (a parse error, a flag without its method, two methods at once): exit status 2, and the one
# line may come before any subcommand was read ("earlybert: ...").
expect_usage() {
  local fragment=$1; shift
  local status=0 error_line
  "$@" >out.txt 2>err.txt || status=$?
  [[ $status -eq 2 ]] || fail "exit status $status, expected 2: $* ($(tail -n 1 err.txt))"
  [[ $(wc -l < err.txt) -eq 1 ]] || fail "expected exactly one line on stderr: $(cat err.txt)"
  error_line=$(cat err.txt)
  [[ $error_line =~ ^earlybert(\ [a-z]+)?:\  ]] || fail "not an error line 'earlybert <subcommand>: ...': $error_line"
  [[ $error_line == *"$fragment"* ]] || fail "the error line lacks '$fragment': $error_line"
  [[ ! -s out.txt ]] || fail "a refused command wrote on stdout: $(cat out.txt)"
}

head -n 301 "$data/sst2/train_subset.tsv" > train.tsv
head -n 101 "$data/sst2/dev.tsv" > dev.tsv
vocab=$data/vocab/bert-base-uncased-vocab.txt
common=(--dev dev.tsv --vocab "$vocab" --epochs 1 --batch 16 --threads 2)
finetune=("$earlybert" finetune --train train.tsv "${common[@]}" --shape tiny --seed 7)

# Runs killed with SIGKILL (the resume cases): the kill steps come from bash's RANDOM, seeded with
# EARLYBERT_KILL_SEED or the shell's PID (printed).
RANDOM=${EARLYBERT_KILL_SEED:-$$}
# Every timing field: tokens_per_s to the end of a step line, and any field named for wall time.
untimed() { sed -e 's/"tokens_per_s".*//' -e 's/"[a-z_]*wall[a-z_]*":[^,]*,//g' "$1"; }
steps_in() { [[ -e $1 ]] && grep -c '"event":"step"' "$1" || true; }
# kill_and_resume NAME MAX_KILLS FIRST_TARGET COMMAND...: the first kill once FIRST_TARGET steps are
# in the metrics, each later one 2-13 steps past the most the file has held, at most MAX_KILLS.
kill_and_resume() {
  local name=$1 max_kills=$2 target=$3 kills=0 status; shift 3
  echo "$name: kill seed ${EARLYBERT_KILL_SEED:-$$}"
  while :; do
    "$@" --out "$name" --metrics "$name.jsonl" --checkpoint-every 3 --resume >> "$name.out" 2>> "$name.log" &
    local pid=$!
    while kill -0 $pid 2> /dev/null && (( $(steps_in "$name.jsonl") + 0 < target )); do sleep 0.01; done
    (( kills < max_kills )) && kill -9 $pid 2> /dev/null && kills=$((kills + 1))
    status=0
    wait $pid 2> /dev/null || status=$?
    [[ $status -eq 0 ]] && break
    [[ $status -eq 137 ]] || fail "$name exited with $status: $(tail -n 3 "$name.log")"
    target=$(( $(steps_in "$name.jsonl") + 0 + 2 + RANDOM % 12 ))
  done
  echo "$name: $kills kills; resumed at: $(sed -n "s/.*resuming from '[^']*' at //p" "$name.log" | paste -sd';' -)"
  [[ ! -e $name/training_state.safetensors ]] || fail "$name: the training state is left after the run completed"
}
case $case_name in
deterministic)
  # The same seed and thread count give bit-identical checkpoints and metrics (but for timing fields).
  "${finetune[@]}" --out a --metrics a.jsonl
  "${finetune[@]}" --out b --metrics b.jsonl
  cmp a/model.safetensors b/model.safetensors || fail "two runs with the same seed differ"
  untimed() { sed -e 's/"tokens_per_s".*//' -e 's/"train_wall_s":[^,]*,//' "$1"; }
  diff <(untimed a.jsonl) <(untimed b.jsonl) || fail "metrics differ"
  grep -q '"event":"summary","mode":"dense","dev_accuracy":' a.jsonl || fail "no summary line"
  grep -q '"event":"eval","step":19,"accuracy":' a.jsonl || fail "no eval line in the metrics"
  "$earlybert" finetune --train train.tsv "${common[@]}" --shape tiny --seed 8 --out c
  ! cmp -s a/model.safetensors c/model.safetensors || fail "another seed gives the same weights"
  ;;
predict)
  # A checkpoint round-trips: loading it again gives the same predictions, one JSON line per row.
  "${finetune[@]}" --out runs/nested/model  # missing parents are created
  mv runs/nested/model model
  "$earlybert" predict --checkpoint model --input dev.tsv --out first.jsonl
  "$earlybert" predict --checkpoint model --input dev.tsv --out second.jsonl
  cmp first.jsonl second.jsonl || fail "predictions differ between two loads of the checkpoint"
  [[ $(wc -l < first.jsonl) -eq 100 ]] || fail "expected 100 prediction lines"
  head -n 1 first.jsonl | grep -Eq '^\{"index":0,"logits":\[[-0-9.e]+,[-0-9.e]+\],"label":[01],"label_name":"LABEL_[01]"\}$' \
    || fail "bad line: $(head -n 1 first.jsonl)"
  "$earlybert" inspect model --json | grep -q '"architecture":"BertForSequenceClassification","shape":"tiny"' || fail "inspect"
  ;;
glue)
  # GLUE tasks by name, on the bundled excerpts (data/tasks) and on crafted files in MNLI's and QQP's
  # layouts: each task's metrics in the eval events, its main metric in the summary, its head in the
  # checkpoint, and predict writing what the task needs.
  tasks=$data/tasks
  glue=("$earlybert" finetune --vocab "$vocab" --shape tiny --steps 4 --batch 16 --max-seq 48 --threads 2 --seed 3)
  "${glue[@]}" --task cola --data "$tasks/cola" --out cola --metrics cola.jsonl
  grep -Eq '"event":"eval","step":4,"accuracy":[-0-9.e]+,"metrics":\{"mcc":[-0-9.e]+,"accuracy":[-0-9.e]+\}' cola.jsonl || fail "CoLA's eval event"
  grep -q '"task":"cola","main_metric":"mcc","dev_main":' cola.jsonl || fail "CoLA's summary does not name its main metric"
  grep -q '"finetuning_task": "cola"' cola/config.json || fail "the checkpoint does not name its task"
  "$earlybert" predict --checkpoint cola --input "$tasks/cola/dev.tsv" --out cola_dev.jsonl > cola_dev.out  # headerless, as the task reads it
  [[ $(wc -l < cola_dev.jsonl) -eq 100 ]] || fail "expected 100 CoLA predictions"
  # The checkpoint keeps GLUE's class names and the --max-seq it was trained with, which predict uses;
  # predict writes GLUE's submission layout and scores the labelled dev file with CoLA's metrics.
  grep -q '"1": "acceptable"' cola/config.json || fail "CoLA's class names are not in the checkpoint"
  grep -q '"model_max_length": 48' cola/tokenizer_config.json || fail "the checkpoint does not keep its --max-seq"
  "$earlybert" predict --checkpoint cola --input "$tasks/cola/dev.tsv" --out cola_48.jsonl --max-seq 48 > /dev/null
  cmp cola_dev.jsonl cola_48.jsonl || fail "predict does not run at the checkpoint's --max-seq"
  head -n 1 cola_dev.jsonl | grep -Eq '"label_name":"(un)?acceptable"\}$' || fail "bad CoLA prediction: $(head -n 1 cola_dev.jsonl)"
  [[ $(head -n 1 cola_dev.submission.tsv) == $'index\tprediction' && $(sed -n 2p cola_dev.submission.tsv) =~ ^0$'\t'(un)?acceptable$ ]] \
    || fail "bad GLUE submission file: $(head -n 2 cola_dev.submission.tsv)"
  grep -Eq "^predict: cola on 100 rows of '.*cola/dev.tsv': mcc [-0-9.]+, accuracy [0-9.]+ \(in 'cola_dev.metrics.json'\)$" cola_dev.out \
    || fail "predict does not print CoLA's metrics: $(cat cola_dev.out)"
  grep -q '"mcc":' cola_dev.metrics.json && grep -q '"rows": 100' cola_dev.metrics.json || fail "bad metrics file: $(cat cola_dev.metrics.json)"
  grep -q '"eval_mcc":' cola/eval_results.json || fail "no eval_results.json beside the checkpoint"
  "${glue[@]}" --task stsb --data "$tasks/stsb" --out stsb --metrics stsb.jsonl
  grep -Eq '"metrics":\{"pearson":[-0-9.e]+,"spearman":[-0-9.e]+\}' stsb.jsonl || fail "STS-B's eval event"
  grep -q '"problem_type": "regression"' stsb/config.json || fail "STS-B's head is not a regression"
  "$earlybert" predict --checkpoint stsb --input "$tasks/stsb/dev.tsv" --out stsb_dev.jsonl
  head -n 1 stsb_dev.jsonl | grep -Eq '^\{"index":0,"score":[-0-9.e]+\}$' || fail "bad STS-B prediction: $(head -n 1 stsb_dev.jsonl)"
  "${glue[@]}" --task rte --train "$tasks/rte/train.tsv" --dev "$tasks/rte/dev.tsv" --out rte --earlybert --eb-interval 1 --metrics rte.jsonl
  grep -q '"event":"summary","mode":"earlybert"' rte.jsonl || fail "no EarlyBERT summary for RTE"
  "$earlybert" predict --checkpoint rte --input "$tasks/rte/dev.tsv" --out rte_dev.jsonl
  head -n 1 rte_dev.jsonl | grep -Eq '"label_name":"(entailment|not_entailment)"\}$' || fail "bad RTE prediction: $(head -n 1 rte_dev.jsonl)"
  # MNLI: two dev sets, text labels; QQP: its six columns.
  mkdir mnli qqp
  parses=$'( ( A ) )\t( ( B ) )\t(ROOT A)\t(ROOT B)'
  mnli_head=$'index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2'
  {
    printf '%s\tlabel1\tgold_label\n' "$mnli_head"
    for i in $(seq 0 23); do
      labels=(contradiction entailment neutral)
      printf '%s\t1\t1n\tfiction\t%s\tThe man number %s walks home.\tSomeone walks.\t%s\t%s\n' "$i" "$parses" "$i" "${labels[i % 3]}" "${labels[i % 3]}"
    done
  } > mnli/train.tsv
  for split in matched mismatched; do
    {
      printf '%s\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n' "$mnli_head"
      printf '0\t2\t2e\tslate\t%s\tA woman sings.\tA person sings.\tentailment\tentailment\tentailment\tneutral\tentailment\tentailment\n' "$parses"
      printf '1\t3\t3c\tslate\t%s\tA dog sleeps.\tThe dog runs.\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\n' "$parses"
    } > "mnli/dev_$split.tsv"
  done
  "${glue[@]}" --task mnli --data mnli --out mnli_model --metrics mnli.jsonl
  grep -Eq '"metrics":\{"accuracy":[-0-9.e]+,"accuracy_mismatched":[-0-9.e]+\}' mnli.jsonl || fail "MNLI's matched and mismatched accuracy"
  grep -q '"2": "neutral"' mnli_model/config.json || fail "MNLI's label names are not in the checkpoint"
  {
    printf 'id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n'
    for i in $(seq 1 20); do printf '%s\t%s\t%s\tHow do I learn %s?\tWhat is the way to learn %s?\t%s\n' "$i" "$((2 * i))" "$((2 * i + 1))" "$i" "$i" "$((i % 2))"; done
  } > qqp/train.tsv
  cp qqp/train.tsv qqp/dev.tsv
  "${glue[@]}" --task qqp --data qqp --out qqp_model --metrics qqp.jsonl
  grep -Eq '"metrics":\{"f1":[-0-9.e]+,"accuracy":[-0-9.e]+\}' qqp.jsonl || fail "QQP's F1 and accuracy"
  # Bad settings: one error each, nothing written.
  expect_error "--task is 'glue', expected one of cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, squad, upos or ner" "${glue[@]}" --task glue --data qqp --out x
  expect_error "--task rte reads either --data DIR (its train.tsv and dev.tsv) or both --train and --dev" "${glue[@]}" --task rte --out x
  expect_usage "--data names the task's directory, --train and --dev its files: give --data, or --train and --dev" "${glue[@]}" --task rte --data "$tasks/rte" --dev "$tasks/rte/dev.tsv" --out x
  expect_error "train.tsv': line 1: the header has no text column 'sentence1' (found 'gj04', '1', ''," \
    "${glue[@]}" --task rte --train "$tasks/cola/train.tsv" --dev "$tasks/rte/dev.tsv" --out x
  printf 'index\tsentence1\tsentence2\tlabel\n0\tA premise.\tA hypothesis.\t1\n' > rte_numbers.tsv
  expect_error "rte_numbers.tsv': line 2: label '1' is not one of entailment, not_entailment" \
    "${glue[@]}" --task rte --train rte_numbers.tsv --dev "$tasks/rte/dev.tsv" --out x
  expect_error "--train and --dev are required without --task" "${glue[@]}" --out x
  [[ ! -e x ]] || fail "a failed run left its output directory"
  ;;
tagging)
  # Token classification on the bundled excerpts: UPOS (CoNLL-U) scored by word accuracy, WNUT-17
  # NER scored by entity F1, the token classifier in the checkpoint, EarlyBERT through the same path.
  tasks=$data/tasks
  tag=("$earlybert" finetune --vocab "$vocab" --shape tiny --steps 4 --batch 16 --max-seq 64 --threads 2 --seed 3)
  "${tag[@]}" --task upos --data "$tasks/upos" --out upos --metrics upos.jsonl
  grep -Eq '"event":"eval","step":4,"accuracy":[-0-9.e]+,"metrics":\{"accuracy":[-0-9.e]+\}' upos.jsonl || fail "UPOS's eval event"
  grep -q '"architectures": \[$' upos/config.json && grep -q '"BertForTokenClassification"' upos/config.json || fail "not a token classifier"
  grep -q '"16": "X"' upos/config.json || fail "UPOS's tag names are not in the checkpoint"
  "${tag[@]}" --task ner --data "$tasks/ner" --out ner --metrics ner.jsonl --earlybert --eb-interval 1
  grep -q '"task":"ner","main_metric":"f1"' ner.jsonl || fail "NER's summary does not name entity F1"
  grep -Eq '"dev_metrics":\{"f1":[-0-9.e]+,"precision":[-0-9.e]+,"recall":[-0-9.e]+,"accuracy":[-0-9.e]+\}' ner.jsonl || fail "NER's metrics"
  "$earlybert" predict --checkpoint upos --input "$tasks/upos/en_ewt-ud-dev.conllu" --out upos_dev.jsonl
  [[ $(wc -l < upos_dev.jsonl) -eq 100 ]] || fail "expected 100 tagged sentences"
  head -n 1 upos_dev.conll | grep -Eq '^From [A-Z]+$' || fail "bad CoNLL tag file: $(head -n 2 upos_dev.conll)"
  [[ $(grep -c '^$' upos_dev.conll) -eq 100 ]] || fail "the CoNLL tag file does not end each of the 100 sentences with a blank line"
  grep -q '"accuracy":' upos_dev.metrics.json || fail "the gold tags are not scored: $(ls)"
  head -n 1 upos_dev.jsonl | grep -Eq '^\{"index":0,"words":\["From","the","AP","comes","this","story",":"\],"tags":\[("[A-Z]+",?){7}\]\}$' \
    || fail "bad UPOS prediction: $(head -n 1 upos_dev.jsonl)"
  printf 'Hello\nParis\n\nBob\n' > raw.txt  # words without tags
  "$earlybert" predict --checkpoint ner --input raw.txt --out raw.jsonl
  [[ $(wc -l < raw.jsonl) -eq 2 ]] && grep -q '"words":\["Bob"\],"tags":\["[A-Za-z-]*"\]' raw.jsonl || fail "bad NER prediction: $(cat raw.jsonl)"
  "$earlybert" finetune --vocab "$vocab" --shape tiny --steps 1 --batch 16 --max-seq 8 --threads 2 --task upos --data "$tasks/upos" --out short 2> short.txt
  grep -q "dev words do not fit in --max-seq 8 and count as mispredicted" short.txt || fail "cut-off words were not reported"
  expect_error "--data '$tasks/ner' holds no training file for --task upos (looked for *-ud-train.conllu)" "${tag[@]}" --task upos --data "$tasks/ner" --out x
  printf 'word\tB-person\nlonely\n' > bad.conll
  expect_error "NER file 'bad.conll': line 2: found 1 column ('lonely'), expected a word and its tag" \
    "${tag[@]}" --task ner --train bad.conll --dev "$tasks/ner/emerging.dev.conll" --out x
  [[ ! -e x ]] || fail "a failed run left its output directory"
  ;;
squad)
  # SQuAD v1.1 on the bundled excerpt (two articles of the dev set, split by article): the span head,
  # EM/F1 in the events, predict writing the official {"id": "answer"} file, scored the same by the
  # program and by the official recipe (when python3 is there to run it), EarlyBERT through the same path.
  tasks=$data/tasks
  qa=("$earlybert" finetune --vocab "$vocab" --shape tiny --steps 4 --batch 8 --threads 2 --seed 3 --task squad --data "$tasks/squad")
  "${qa[@]}" --out squad --metrics squad.jsonl 2> log.txt
  grep -q "SQuAD v1.1: 15 training questions in 15 windows, 80 dev questions in 80 windows" log.txt || fail "SQuAD's windows: $(cat log.txt)"
  grep -Eq '"event":"eval","step":4,"metrics":\{"f1":[-0-9.e]+,"exact_match":[-0-9.e]+\}' squad.jsonl || fail "SQuAD's eval event"
  grep -q '"BertForQuestionAnswering"' squad/config.json || fail "not a question-answering checkpoint"
  # tiny's encoder and embeddings (4,369,408) and the span head's 2 x 128 + 2, without a pooler.
  "$earlybert" inspect squad | grep -q "^fine-tuned on: squad$" || fail "inspect does not name the task"
  [[ $("$earlybert" inspect squad --json | grep -o '"parameters":[0-9]*') == '"parameters":4369666' ]] || fail "inspect counts another model's parameters"
  "$earlybert" predict --checkpoint squad --input "$tasks/squad/dev-v1.1.json" --out answers.json
  [[ $(grep -o '"56be4db0acb8001400a502ec":' answers.json | wc -l) -eq 1 ]] || fail "no answer for the first question"
  # The n best answers (best first, the best one the answer, probabilities a distribution) and the
  # metrics predict scored, the same as the run's own evaluation.
  python3 - answers.json answers.nbest.json answers.metrics.json squad.jsonl <<'PY' || fail "the n-best or metrics files are not as documented"
import json, sys
answers, nbest, scored = (json.load(open(f)) for f in sys.argv[1:4])
assert set(nbest) == set(answers), "questions differ"
for qid, best in nbest.items():
    if not best:
        assert answers[qid] == "", qid
        continue
    assert best[0]["text"] == answers[qid], (qid, best[0], answers[qid])
    assert abs(sum(b["probability"] for b in best) - 1) < 1e-9, qid
    assert all(a["probability"] >= b["probability"] for a, b in zip(best, best[1:])), qid
    assert len(best) <= 20
ours = [json.loads(line) for line in open(sys.argv[4]) if '"event":"summary"' in line][-1]["dev_metrics"]
assert all(abs(scored["metrics"][k] - ours[k]) < 1e-9 for k in ("f1", "exact_match")), (scored, ours)
PY
  if command -v python3 > /dev/null; then
    scored=$(python3 "$(dirname "$reference")/../scripts/score_squad.py" "$tasks/squad/dev-v1.1.json" answers.json)
    ours=$(grep '"event":"summary"' squad.jsonl | grep -o '"dev_metrics":{[^}]*}')
    python3 - "$scored" "$ours" <<'PY' || fail "the official recipe scores the predictions differently: $scored vs $ours"
import json, sys
official, ours = json.loads(sys.argv[1]), json.loads("{" + sys.argv[2] + "}")["dev_metrics"]
assert all(abs(official[k] - ours[k]) < 1e-9 for k in ("f1", "exact_match")), (official, ours)
PY
  fi
  "${qa[@]}" --out squad_eb --earlybert --eb-interval 1 --metrics squad_eb.jsonl
  grep -q '"event":"summary","mode":"earlybert".*"task":"squad","main_metric":"f1"' squad_eb.jsonl || fail "no EarlyBERT summary for SQuAD"
  sed 's/"answer_start": 177/"answer_start": 178/' "$tasks/squad/dev-v1.1.json" > shifted.json
  expect_error "SQuAD file 'shifted.json': question '56be4db0acb8001400a502ec': the answer 'Denver Broncos' is not at character 178 of its context" \
    "$earlybert" finetune --vocab "$vocab" --shape tiny --task squad --train "$tasks/squad/train-v1.1.json" --dev shifted.json --out x
  expect_error "--max-seq is 40, expected at least --max-query + 4 = 68" "$earlybert" finetune --vocab "$vocab" --shape tiny --task squad \
    --data "$tasks/squad" --max-seq 40 --out x
  [[ ! -e x ]] || fail "a failed run left its output directory"
  ;;
pretrain-then-finetune)
  # A masked-LM checkpoint initialises a classifier (pooler and classifier start fresh).
  # Two corpora, a file and a folder, each named with what it holds; trained as segment pairs.
  mkdir -p more && head -c 20000 "$data/wikitext2/valid_head.txt" > more/valid_part.txt
  "$earlybert" pretrain --corpus "$data/wikitext2/train_head.txt" more --vocab "$vocab" --shape tiny --out mlm --steps 4 --segment-pairs \
    --batch 8 --seq 32 --eval-every 2 --eval-sequences 16 --metrics mlm.jsonl --threads 2 --save-dtype f16 2> mlm.log
  python3 -c 'import json, struct, sys; f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]
assert {v["dtype"] for k, v in json.loads(f.read(n)).items() if k != "__metadata__"} == {"F16"}' mlm/model.safetensors \
    || fail "--save-dtype f16 did not store the weights as F16"
  grep -Eq "^pretrain: corpus 'more/valid_part.txt': [0-9]+ lines, [0-9]+ tokens$" mlm.log || fail "the second corpus was not named: $(cat mlm.log)"
  grep -Eq "^pretrain: [0-9]+ tokens from [0-9]+ lines of 2 files;" mlm.log || fail "the corpus total: $(cat mlm.log)"
  [[ $(grep -c '"event":"eval"' mlm.jsonl) -eq 3 ]] || fail "expected evaluations at steps 0, 2 and 4"
  grep -q '"event":"eval","step":4,"mlm_accuracy":' mlm.jsonl || fail "no masked-LM evaluation"
  "$earlybert" inspect mlm | grep -q "BertForMaskedLM of shape tiny" || fail "inspect of the masked-LM checkpoint"
  # predict on held-out text reproduces pretrain's held-out figures: with --eval-corpus, its first
  # --eval-sequences sequences, masked the same way (another batch size: the loss to rounding).
  head -c 3000 "$data/wikitext2/valid_head.txt" > held.txt
  "$earlybert" pretrain --corpus "$data/wikitext2/train_head.txt" --eval-corpus held.txt --vocab "$vocab" --shape tiny --out mlm_held --steps 3 \
    --batch 8 --seq 32 --eval-sequences 1000 --metrics mlm_held.jsonl --threads 2 > /dev/null 2>&1
  "$earlybert" predict --checkpoint mlm_held --input held.txt --out held.json > held.out
  python3 - <<'PY' || fail "predict's masked-LM figures differ from pretrain's: $(cat held.out)"
import json
final = [json.loads(l) for l in open("mlm_held.jsonl") if '"event":"eval"' in l][-1]
got = json.load(open("held.json"))
assert got["task"] == "masked_lm" and got["seq"] == 32 and got["sequences"] > 10, got
assert abs(got["metrics"]["masked_lm_loss"] - final["loss"]) < 1e-4 and abs(got["metrics"]["masked_lm_accuracy"] - final["mlm_accuracy"]) < 1e-9, (got, final)
PY
  grep -Eq "^predict: masked LM on [0-9]+ sequences of 32 tokens of 'held.txt' \([0-9]+ masked\): masked_lm_loss [0-9.]+, masked_lm_accuracy [0-9.]+ \(in 'held.json'\)$" held.out \
    || fail "predict's masked-LM line: $(cat held.out)"
  "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --init mlm --epochs 1 --batch 16 --out cls 2> log.txt
  grep -q "freshly initialised: bert.pooler.dense.weight, bert.pooler.dense.bias, classifier.weight, classifier.bias" log.txt \
    || fail "the fresh task head was not reported: $(cat log.txt)"
  # Pre-training through the EarlyBERT pipeline; the pruned masked-LM checkpoint initialises a
  # (pruned) classifier.
  "$earlybert" pretrain --corpus "$data/wikitext2/train_head.txt" --vocab "$vocab" --shape tiny --out mlm_eb --steps 12 \
    --batch 8 --seq 32 --eval-sequences 16 --earlybert --eb-interval 2 --eb-window 3 --eb-eps 1 --metrics mlm_eb.jsonl --threads 2
  grep -q '"event":"ticket","step":6,"detected":true,"heads_kept":\[1,1\]' mlm_eb.jsonl || fail "no ticket in pre-training"
  grep -q '"event":"step","stage":"efficient","step":8,' mlm_eb.jsonl || fail "no efficient pre-training steps (two thirds of 12)"
  grep '"event":"summary","mode":"earlybert"' mlm_eb.jsonl | grep -q '"mlm_accuracy":' || fail "no pre-training summary"
  [[ -s mlm_eb/earlybert_ticket.json ]] || fail "the pre-training masks were not saved"
  "$earlybert" inspect mlm_eb --json | grep -q '"heads_kept":\[1,1\]' || fail "the pruned masked-LM checkpoint does not reload"
  "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --init mlm_eb --epochs 1 --batch 16 --out cls_eb \
    || fail "a pruned masked-LM checkpoint does not initialise a classifier"
  expect_error "--init 'mlm_eb' is already pruned; EarlyBERT starts from an unpruned model" \
    "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --init mlm_eb --earlybert --out z
  ;;
earlybert)
  # The pipeline end to end: checks, a ticket, a compacted checkpoint that reloads and predicts.
  "$earlybert" finetune --train train.tsv "${common[@]}" --shape tiny --seed 3 --earlybert --eb-interval 2 --eb-window 3 \
    --eb-eps 1 --efficient-steps 5 --out eb --metrics eb.jsonl
  grep -q '"event":"eb_check","step":2,"head_distance":null,"ffn_distance":null' eb.jsonl || fail "no first eb_check line"
  grep -q '"event":"ticket","step":6,"detected":true,"heads_kept":\[1,1\],"ffn_kept":\[' eb.jsonl || fail "no ticket at the third check"
  grep -q '"event":"step","stage":"efficient","step":5,' eb.jsonl || fail "no efficient steps"
  grep '"event":"summary","mode":"earlybert","importance":"slimming",' eb.jsonl | grep -q '"dev_accuracy":' || fail "no summary"
  [[ -s eb/earlybert_ticket.json ]] || fail "the recorded masks were not saved"
  # The run's cost against the dense run it replaces, in its summary and its result line; inspect shows the ticket.
  grep -q '"flops_vs_dense":' eb/summary.json && grep -q '"wall_vs_dense_estimate":' eb/summary.json || fail "no cost against dense: $(cat eb/summary.json)"
  "$earlybert" inspect eb | grep -q "^EarlyBERT ticket: drawn at search step 6, " || fail "inspect does not show the ticket: $("$earlybert" inspect eb)"
  "$earlybert" inspect eb --json | grep -q '"heads_kept":\[1,1\]' || fail "the pruned checkpoint does not reload with its heads"
  "$earlybert" predict --checkpoint eb --input dev.tsv --out eb.jsonl.out
  [[ $(wc -l < eb.jsonl.out) -eq 100 ]] || fail "the pruned checkpoint does not predict"
  expect_error "--prune-ffn is 1, expected a value in [0, 1)" \
    "$earlybert" finetune --train train.tsv "${common[@]}" --shape tiny --earlybert --prune-ffn 1 --out z
  expect_error "--l1-heads is -1, expected a non-negative value" \
    "$earlybert" finetune --train train.tsv "${common[@]}" --shape tiny --earlybert --l1-heads -1 --out z
  expect_error "--importance is 'best', expected slimming, random, magnitude, gradient or taylor" \
    "$earlybert" finetune --train train.tsv "${common[@]}" --shape tiny --earlybert --ticket best --out z
  [[ ! -e z ]] || fail "an output directory was created despite the errors"
  ;;
any-shape)
  # A HuggingFace checkpoint of a shape that is none of the named ones (3 layers, hidden 64, 2 heads of
  # size 32, FFN 96), written by PyTorch: it loads, and predict gives PyTorch's logits.
  checkpoint=$reference/head32_bert
  "$earlybert" inspect "$checkpoint" | grep -q "BertForSequenceClassification of shape (unnamed) (3 layers, hidden 64, 2 heads, ffn 96)" \
    || fail "inspect does not describe the checkpoint: $("$earlybert" inspect "$checkpoint")"
  "$earlybert" inspect "$checkpoint" --json | grep -q '"shape":null,"layers":3,"hidden":64,"heads":2,"ffn":96' || fail "inspect --json"
  "$earlybert" predict --checkpoint "$checkpoint" --input "$checkpoint/sentences.tsv" --out head32.jsonl --threads 2
  python3 - "$checkpoint/expected_logits.json" head32.jsonl <<'PY' || fail "the logits differ from PyTorch's"
import json, sys
expected = json.load(open(sys.argv[1]))["logits"]
got = [json.loads(line)["logits"] for line in open(sys.argv[2])]
assert len(got) == len(expected), (len(got), len(expected))
worst = max(abs(g - e) for gr, er in zip(got, expected) for g, e in zip(gr, er))
print(f"largest difference from PyTorch's logits: {worst:.2e}")
assert worst <= 1e-4, worst
PY
  # It fine-tunes as any other checkpoint; a --shape that contradicts it is refused.
  printf 'sentence\tlabel\nw1 w2 w3\t0\nw4 w5\t2\nw6\t1\nw7 w8 w9 w10\t0\n' > words.tsv
  "$earlybert" finetune --train words.tsv --dev words.tsv --vocab "$checkpoint/vocab.txt" --init "$checkpoint" --num-labels 3 --max-seq 16 \
    --epochs 2 --batch 2 --out tuned --threads 2 --quiet
  "$earlybert" inspect tuned --json | grep -q '"shape":null,"layers":3,"hidden":64,"heads":2,"ffn":96' || fail "the fine-tuned checkpoint"
  expect_error "--shape is 'tiny', but the checkpoint '$checkpoint' holds a 3/64/2/96 (layers/hidden/heads/ffn) model" \
    "$earlybert" finetune --train words.tsv --dev words.tsv --vocab "$checkpoint/vocab.txt" --init "$checkpoint" --num-labels 3 --max-seq 16 \
    --shape tiny --out z
  ;;
demo)
  # The main job on a miniature copy of the bundled data: pre-training, three arms for two seeds, the
  # table, summary.json in the documented layout and the first seed's checkpoints.
  mkdir -p small/vocab small/sst2 small/wikitext2
  cp "$vocab" small/vocab/
  head -n 161 "$data/sst2/train_subset.tsv" > small/sst2/train_subset.tsv
  cp dev.tsv small/sst2/dev.tsv
  head -n 300 "$data/wikitext2/train_head.txt" > small/wikitext2/train_head.txt
  head -n 100 "$data/wikitext2/valid_head.txt" > small/wikitext2/valid_head.txt
  "$earlybert" demo --data small --out demo --pretrain-steps 4 --seeds 2 --epochs 3 --threads 2 > table.txt
  grep -Eq '^earlybert +43 ' table.txt || fail "no row for the second seed: $(cat table.txt)"
  [[ $(grep -c '^Mean over 2 seed(s):' table.txt) == 2 ]] || fail "no means for both settings: $(cat table.txt)"
  python3 - <<'PY' || fail "summary.json is not in the documented layout"
import json
s = json.load(open("demo/summary.json"))
assert [t["name"] for t in s["settings"]] == ["sst2", "deeper"], s["settings"]
paper, deeper = s["settings"]
assert (paper["prune_ffn"], deeper["prune_ffn"], deeper["prune_heads"]) == (0.4, 0.8, 0.5)
for t in s["settings"]:
    assert t["main_metric"] == "accuracy" and t["earlybert_ahead_seeds"] in (0, 1, 2)
    names = [r["name"] for r in t["runs"]]
    assert names == ["dense", "earlybert", "random_ticket"], names
    for r in t["runs"]:
        for key in ("dev_main", "dev_main_std", "train_wall_s", "train_flops", "ticket_step", "total_steps"):
            assert key in r, key
        assert len(r["per_seed"]) == 2
    assert t["runs"][0]["ticket_step"] is None and t["runs"][1]["ticket_step"] > 0
# The deeper setting's dense runs are the first setting's, not trained again.
assert paper["runs"][0] == deeper["runs"][0]
assert deeper["runs"][1]["flops_ratio"] < paper["runs"][1]["flops_ratio"]
assert s["start"] == "pretrained" and s["pretraining"]["steps"] == 4
PY
  "$earlybert" inspect demo/earlybert --json | grep -q '"heads_kept":\[1,1\]' || fail "the EarlyBERT checkpoint is not pruned"
  "$earlybert" inspect demo/deeper/earlybert --json | grep -q '"heads_kept":\[1,1\]' || fail "the deeper EarlyBERT checkpoint is not pruned"
  [[ -e demo/pretrained/model.safetensors && -e demo/random_ticket/model.safetensors ]] || fail "checkpoints missing"
  [[ -e demo/deeper/random_ticket/model.safetensors && ! -e demo/deeper/dense ]] || fail "the deeper setting's checkpoints are wrong"
  [[ ! -e demo/dense_seed43 ]] || fail "only the first seed keeps checkpoints"
  expect_error "--seeds is 0, expected at least 1" "$earlybert" demo --data small --out nodemo --seeds 0
  [[ ! -e nodemo ]] || fail "the demo created its output despite the error"
  # By default the demo starts from the bundled pre-trained model of --shape: none in this copy, then
  # the one the repository ships.
  expect_error "the demo starts from the bundled pre-trained tiny, but 'small/pretrained/tiny' holds none (no config.json)" \
    "$earlybert" demo --data small --out nodemo
  [[ ! -e nodemo ]] || fail "the demo created its output without a model to start from"
  mkdir -p small/pretrained && cp -r "$data/pretrained/tiny" small/pretrained/
  "$earlybert" demo --data small --out bundled --seeds 1 --no-deeper --epochs 1 --efficient-epochs 1 --threads 2 > bundled.txt
  python3 - <<'PY' || fail "the demo did not start from the bundled model"
import json
s = json.load(open("bundled/summary.json"))
assert s["start"] == "bundled" and s["pretraining"] is None, s
assert s["initialised_from"] == "small/pretrained/tiny", s["initialised_from"]
assert [t["name"] for t in s["settings"]] == ["sst2"]
PY
  ;;
lottery)
  # The lottery-ticket family (docs/lottery.md): IMP's levels, a ticket and its three controls, static
  # and RigL sparsity, instability analysis; their files, events and errors.
  "${finetune[@]}" --imp --imp-levels 2 --out imp --metrics imp.jsonl > /dev/null 2>&1
  "${finetune[@]}" --init imp/level_00 --mask-from imp/level_02 --out ticket --metrics ticket.jsonl > /dev/null 2>&1
  for control in random reinit shuffle; do
    "${finetune[@]}" --init imp/level_00 --mask-from imp/level_02 --control $control --out $control > /dev/null 2>&1
  done
  # (from level 0's trained weights, so that a control that did not change the weights would show)
  "${finetune[@]}" --sparsity 0.8 --out static > /dev/null 2>&1
  "${finetune[@]}" --sparsity 0.8 --rigl --rigl-interval 4 --out rigl --metrics rigl.jsonl > rigl.out 2> /dev/null
  grep -Eq "^finetune \(RigL, [0-9]+ mask updates, 80\.0% of the weights pruned; unstructured masks save no FLOPs with dense GEMMs\): 19 steps in all" rigl.out \
    || fail "RigL's result line does not state its sparsity: $(cat rigl.out)"
  # IMP's run is every level's steps: 3 levels of 19.
  grep -q '"total_steps": 57' imp/summary.json && grep -q '"last_level_flops_vs_dense": 1.0' imp/summary.json \
    || fail "IMP's summary does not count every level's steps: $(cat imp/summary.json)"
  "${finetune[@]}" --lmc-step 5 --lmc-points 6 --out lmc --metrics lmc.jsonl > /dev/null 2>&1
  "${finetune[@]}" --imp --imp-structures --imp-levels 2 --imp-rate 0.5 --out simp > /dev/null 2>&1
  # Greedy forward selection at rate 0.95 (about 27 of a layer's 512 neurons ranked, on 2 examples),
  # against magnitude at the same rate: the same counts, other neurons.
  "${finetune[@]}" --imp --imp-structures --imp-levels 1 --imp-rate 0.95 --imp-criterion greedy --greedy-examples 2 --out simp_greedy > /dev/null 2>&1
  "${finetune[@]}" --imp --imp-structures --imp-levels 1 --imp-rate 0.95 --imp-criterion magnitude --out simp_magnitude > /dev/null 2>&1
  python3 - <<'PY' || fail "the lottery methods' files are not as documented"
import array, json, struct
def tensors(directory):
    with open(directory + "/model.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", t
        begin, end = t["data_offsets"]
        out[name] = array.array("f", data[begin:end])
    return out
encoder = lambda name: name.startswith("bert.encoder.") and name.endswith(".weight_mask")
imp = [json.load(open(f"imp/level_{l:02}/level.json")) for l in range(3)]
for l, level in enumerate(imp):
    assert level["level"] == l and level["kept"] == round(0.8 ** l * level["weights"]), level
    masks = {k: v for k, v in tensors(f"imp/level_{l:02}").items() if k.endswith(".weight_mask")}
    assert all(encoder(k) for k in masks), "IMP masked a weight outside the encoder"
    assert sum(sum(m) for m in masks.values()) == (level["kept"] if l else 0) or (l == 0 and not masks), l
    t = tensors(f"imp/level_{l:02}")
    for k, m in masks.items():  # a pruned weight is zero
        w = t[k[: -len("_mask")]]
        assert all(w[i] == 0 for i in range(len(m)) if m[i] == 0), k
events = [json.loads(line) for line in open("imp.jsonl")]
assert [e["level"] for e in events if e["event"] == "imp_level"] == [0, 1, 2]
assert events[-1]["event"] == "summary" and events[-1]["mode"] == "imp"
ticket, level0 = tensors("ticket"), tensors("imp/level_02")
masks = {k: v for k, v in ticket.items() if k.endswith(".weight_mask")}
assert masks and all(masks[k] == level0[k] for k in masks), "the ticket's run changed the masks"
init = tensors("imp/level_00")
for control in ("random", "reinit", "shuffle"):
    c = tensors(control)
    for k, m in masks.items():
        assert sum(c[k]) == sum(m), (control, k)  # each matrix's sparsity
    same_masks = all(c[k] == masks[k] for k in masks)
    assert same_masks == (control != "random"), control
static, rigl = tensors("static"), tensors("rigl")
names = [k for k in static if k.endswith(".weight_mask")]
assert names and all(sum(static[k]) == sum(rigl[k]) for k in names), "RigL changed a matrix's sparsity"
assert any(static[k] != rigl[k] for k in names), "RigL moved no weight"
for k in names:
    assert abs(1 - sum(static[k]) / len(static[k]) - 0.8) < 1e-3, k
updates = [json.loads(l) for l in open("rigl.jsonl") if '"rigl_update"' in l]
assert [u["step"] for u in updates] == [5, 9, 13] and all(u["moved"] > 0 for u in updates), updates
lmc = json.load(open("lmc/lmc.json"))
points = lmc["points"]
assert [p["alpha"] for p in points] == [i / 6 for i in range(7)] and lmc["split_step"] == 5
errors = [p["error"] for p in points]
assert abs(lmc["error_barrier"] - (max(errors) - (errors[0] + errors[-1]) / 2)) < 1e-12
final = [json.loads(l) for l in open("lmc.jsonl") if '"event":"eval"' in l][-1]
assert abs(1 - final["accuracy"] - errors[0]) < 1e-12, "the path does not start at the first copy, the run's own model"
# Structured IMP of tiny (2 layers of 2 heads and 512 neurons) at rate 0.5: a head per layer, then still
# one (the floor); 512 and 256 of the 1,024 neurons; the weights of a pruned structure zero.
simp = [json.load(open(f"simp/level_{l:02}/level.json")) for l in range(3)]
assert [s["heads_kept"] for s in simp] == [[2, 2], [1, 1], [1, 1]], simp
assert [sum(s["ffn_kept"]) for s in simp] == [1024, 512, 256], simp
assert simp[2]["encoder_flops_ratio"] < simp[1]["encoder_flops_ratio"] < 1
t = tensors("simp/level_02")
w1 = "bert.encoder.layer.0.intermediate.dense.weight"
rows = len(t[w1]) // 128
zero_rows = sum(all(v == 0 for v in t[w1][r * 128:(r + 1) * 128]) for r in range(rows))
assert zero_rows == 512 - simp[2]["ffn_kept"][0], (zero_rows, simp[2]["ffn_kept"])
kept_rows = {}
for criterion in ("greedy", "magnitude"):
    level = json.load(open(f"simp_{criterion}/level_01/level.json"))
    assert level["heads_kept"] == [1, 1] and sum(level["ffn_kept"]) == 51, (criterion, level)  # round(0.05 x 1,024)
    t = tensors(f"simp_{criterion}/level_01")
    kept_rows[criterion] = [r for r in range(512) if any(v != 0 for v in t[w1][r * 128:(r + 1) * 128])]
    assert len(kept_rows[criterion]) == level["ffn_kept"][0], criterion
assert kept_rows["greedy"] != kept_rows["magnitude"], "greedy kept magnitude's neurons"
PY
  expect_usage "--earlybert and --imp are different training methods" "${finetune[@]}" --earlybert --imp --out x
  expect_usage "--control applies only with --mask-from" "${finetune[@]}" --control random --out x
  expect_error "--control is 'other', expected random or reinit or shuffle" "${finetune[@]}" --mask-from imp/level_01 --control other --out x
  expect_usage "--rigl applies only with --sparsity" "${finetune[@]}" --rigl --out x
  expect_error "--rewind-step is 19, expected a step in [0, 19)" "${finetune[@]}" --imp --rewind-step 19 --out x
  expect_error "--lmc-step is -1, expected a step of at least 0" "${finetune[@]}" --lmc-step -1 --out x
  expect_error "--lmc-step is 19, expected a step in [0, 19)" "${finetune[@]}" --lmc-step 19 --out x
  expect_error "--sparsity is 1, expected a value in (0, 1)" "${finetune[@]}" --sparsity 1 --out x
  expect_error "no weight masks" "${finetune[@]}" --mask-from imp/level_00 --out x
  expect_error "--greedy-examples is 0, expected at least 1" "${finetune[@]}" --imp --imp-structures --imp-criterion greedy --greedy-examples 0 --out x
  expect_error "--imp-criterion is 'best', expected magnitude or gradient or taylor or random or greedy" "${finetune[@]}" --imp --imp-structures --imp-criterion best --out x
  expect_error "--weights is 'all', expected encoder or every-linear" "${finetune[@]}" --sparsity 0.5 --weights all --out x
  [[ ! -e x ]] || fail "a refused run wrote its output"
  ;;
lottery-resume)
  # IMP (killed in the dense level, before and after the rewind point, and in later levels), structured
  # IMP with a criterion that accumulates gradients (its state comes back), RigL
  # (between and at updates) and instability analysis (in the trunk and either copy), each killed with
  # SIGKILL and resumed, end bit-identical to uninterrupted runs: checkpoints, level checkpoints,
  # the path and the metrics (but for timing fields); and an instability run stopped during its path.
  base=("$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --batch 16 --threads 2 --shape tiny --seed 7)
  methods=("imp --imp --imp-levels 2 --rewind-step 4 --epochs 1" "simp --imp --imp-structures --imp-levels 2 --imp-criterion taylor --epochs 1"
           "rigl --sparsity 0.7 --rigl --rigl-interval 4 --epochs 2" "lmc --lmc-step 10 --lmc-points 3 --epochs 2")
  for method in "${methods[@]}"; do
    read -r name flags <<< "$method"
    "${base[@]}" $flags --out ${name}_reference --metrics ${name}_reference.jsonl > /dev/null 2>&1
    kill_and_resume ${name}_killed 6 $((2 + RANDOM % 8)) "${base[@]}" $flags
    cmp ${name}_reference/model.safetensors ${name}_killed/model.safetensors || fail "$name: the resumed weights differ"
    diff <(untimed ${name}_reference.jsonl) <(untimed ${name}_killed.jsonl) || fail "$name: the metrics differ"
    (( $(grep -c "resuming from" ${name}_killed.log) > 0 )) || fail "$name: never resumed"
  done
  # The resume notes say where each run stood: IMP's level, the instability run's copy.
  for name in imp simp; do
    ! grep "resuming from" ${name}_killed.log | grep -Ev "' at step [0-9]+ of level [0-2]$" || fail "$name: a resume note without its level"
  done
  ! grep "resuming from" lmc_killed.log | grep -Ev "' at step [0-9]+ of the (first|second) copy$" || fail "lmc: a resume note without its copy"
  for level in 00 01 02; do
    cmp imp_reference/level_$level/model.safetensors imp_killed/level_$level/model.safetensors || fail "IMP level $level differs"
  done
  cmp lmc_reference/lmc.json lmc_killed/lmc.json || fail "the instability path differs"
  # SIGTERM during the path, after the second copy's last step: the state of both trained copies is
  # written and the run stops with 143; --resume evaluates the path again without training a step
  # and ends as an uninterrupted run does. The signal goes once the second copy's last evaluation is
  # in the metrics; the path's 201 points then take seconds.
  path=("${base[@]}" --lmc-step 10 --lmc-points 200 --epochs 2 --checkpoint-every 0)
  "${path[@]}" --out path_reference --metrics path_reference.jsonl > /dev/null 2>&1
  last=$(grep -o '"event":"eval","step":[0-9]*' path_reference.jsonl | tail -n 1)
  "${path[@]}" --out path_stopped --metrics path_stopped.jsonl 2> path_stopped.log & pid=$!
  while (( $([[ -e path_stopped.jsonl ]] && grep -c "$last" path_stopped.jsonl || true) + 0 < 2 )); do
    kill -0 $pid 2> /dev/null || fail "path: the run ended before its path: $(tail -n 2 path_stopped.log)"
    sleep 0.01
  done
  kill -TERM $pid
  status=0
  wait $pid || status=$?
  [[ $status -eq 143 ]] || fail "path: exit status $status, expected 143"
  tail -n 1 path_stopped.log | grep -Eq "^earlybert finetune: terminated \(SIGTERM\) after step ${last##*:} of the second copy: the training state is in 'path_stopped/training_state.safetensors'; run the same command with --resume to continue$" \
    || fail "path: $(tail -n 2 path_stopped.log)"
  [[ ! -e path_stopped/lmc.json ]] || fail "path: the stopped run wrote lmc.json"
  "${path[@]}" --out path_stopped --metrics path_stopped.jsonl --resume > /dev/null 2> path_resumed.log || fail "path: the resumed run failed"
  grep -q "resuming from 'path_stopped/training_state.safetensors' at step ${last##*:} of the second copy$" path_resumed.log \
    || fail "path: the resumed run did not start after the second copy's last step: $(grep resuming path_resumed.log)"
  cmp path_reference/lmc.json path_stopped/lmc.json || fail "path: the resumed path differs"
  cmp path_reference/model.safetensors path_stopped/model.safetensors || fail "path: the resumed weights differ"
  diff <(untimed path_reference.jsonl) <(untimed path_stopped.jsonl) || fail "path: the metrics differ"
  [[ ! -e path_stopped/training_state.safetensors ]] || fail "path: the training state outlived the run"
  ;;
early-exit)
  # An exit after every layer on the bundled UPOS excerpt: joint steps, then self-sampling steps; the dev
  # set under token-level exit beside the full model; predict under the exit policy (threshold 0 is the
  # full model, a threshold that always fires stops every word at the first layer); a run killed with
  # SIGKILL at random steps, in either stage, resumes bit for bit.
  tasks=$data/tasks
  ee=("$earlybert" finetune --task upos --data "$tasks/upos" --vocab "$vocab" --shape tiny --steps 5 --self-sampling-steps 5 --batch 16 --max-seq 64
      --threads 2 --seed 3 --early-exit)
  "${ee[@]}" --out ee --metrics ee.jsonl > ee.out
  grep -q "^finetune: early exit (token, entropy below 0.15, window 2): dev accuracy" ee.out || fail "the early-exit result line: $(cat ee.out)"
  "$earlybert" inspect ee | grep -q "^exits: 1 exit classifiers beside the final one" || fail "inspect does not count the exits: $("$earlybert" inspect ee)"
  grep -q '"event":"early_exit","mode":"token","measure":"entropy","threshold":0.15,"window":2,"dev_metrics":{"accuracy":' ee.jsonl || fail "no early_exit event"
  grep -q '"mode":"early_exit",.*"joint_steps":5,"self_sampling_steps":5,"early_exit":{' ee.jsonl || fail "the summary lacks the stages or the early exit"
  python3 -c 'import json, struct, sys; f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; assert "exits.0.weight" in json.loads(f.read(n))' \
    ee/model.safetensors || fail "the checkpoint has no exits"
  dev=$tasks/upos/en_ewt-ud-dev.conllu
  "$earlybert" predict --checkpoint ee --input "$dev" --out full.jsonl --exit-report full.json
  "$earlybert" predict --checkpoint ee --input "$dev" --out zero.jsonl --exit-mode token --exit-threshold 0 --exit-report zero.json
  "$earlybert" predict --checkpoint ee --input "$dev" --out all.jsonl --exit-mode sentence --exit-measure max-probability --exit-threshold 1 --exit-report all.json
  cmp full.jsonl zero.jsonl || fail "threshold 0 tags differently from the full model"
  python3 - <<'PY' || fail "the exit reports"
import json
full, zero, every = (json.load(open(f)) for f in ("full.json", "zero.json", "all.json"))
assert full["mean_layers"] == 2 and full["flops_ratio"] == 1 and full["metrics"]["accuracy"] == zero["metrics"]["accuracy"], full
assert zero["mean_layers"] == 2 and zero["running_rows_ratio"] == 1, zero
assert every["mean_layers"] == 1 and every["word_exits"][1] == 0 and every["running_rows_ratio"] == 0.5 and every["flops_ratio"] < 0.55, every
PY
  expect_error "--exit-threshold is 2, expected a value in [0, 1]" "$earlybert" predict --checkpoint ee --input "$dev" --out x.jsonl --exit-threshold 2
  "$earlybert" finetune --task upos --data "$tasks/upos" --vocab "$vocab" --shape tiny --steps 1 --batch 16 --max-seq 64 --threads 2 --out plain
  expect_usage "--exit-mode applies only with a checkpoint with exits (finetune --early-exit), and 'plain' has none" \
    "$earlybert" predict --checkpoint plain --input "$dev" --out x.jsonl --exit-mode token
  "$earlybert" predict --checkpoint plain --input "$dev" --out plain.jsonl --exit-report plain.json
  grep -q '"exits": false' plain.json && grep -q '"accuracy"' plain.json || fail "a plain model's report: $(cat plain.json)"
  expect_error "--early-exit is for --task upos or ner, not 'custom files'" "${finetune[@]}" --early-exit --out x
  # The static baseline: the first layers of a model, trained the same way.
  "$earlybert" finetune --task upos --data "$tasks/upos" --vocab "$vocab" --init plain --layers 1 --steps 1 --batch 16 --max-seq 64 --threads 2 --out shallow
  "$earlybert" inspect shallow --json | grep -q '"layers":1,' || fail "--layers 1 did not keep one layer"
  expect_error "--layers is 3, expected 1 to the model's 2 layers" "$earlybert" finetune --task upos --data "$tasks/upos" --vocab "$vocab" --init plain \
    --layers 3 --steps 1 --out x
  [[ ! -e x && ! -e x.jsonl ]] || fail "a failed run left its output"
  "${ee[@]}" --out reference --metrics reference.jsonl --checkpoint-every 3
  kill_and_resume killed 4 $((1 + RANDOM % 8)) "${ee[@]}"
  cmp reference/model.safetensors killed/model.safetensors || fail "the resumed weights differ"
  diff <(untimed reference.jsonl) <(untimed killed.jsonl) || fail "the resumed metrics differ"
  ;;
bench)
  # Training steps and forward passes of dense and compacted models, in the documented JSON layout.
  "$earlybert" bench --shape tiny --batch 2 --seq 16 --steps 2 --warmup 1 --threads 2 --json > dense.json
  "$earlybert" bench --shape tiny --batch 2 --seq 16 --steps 2 --warmup 1 --prune-heads 0.5 --prune-ffn 0.4 --json > pruned.json
  "$earlybert" bench --shape tiny --task cls --batch 2 --seq 16 --steps 2 --warmup 1 --inference --json > inference.json
  python3 - <<'PY' || fail "bench's JSON is not in the documented layout"
import json
dense, pruned, inference = (json.load(open(f)) for f in ("dense.json", "pruned.json", "inference.json"))
for r in (dense, pruned, inference):
    for key in ("shape", "step_ms_median", "step_ms_min", "step_ms_max", "tokens_per_s", "gflops", "peak_rss_mb", "threads", "openblas_core"):
        assert key in r, key
    assert r["step_ms_min"] <= r["step_ms_median"] <= r["step_ms_max"]
assert dense["mode"] == "train" and set(dense["phases_ms_median"]) == {"forward", "backward", "gradient_norm", "adamw"}
assert (pruned["heads_kept"], pruned["ffn_kept"]) == (1, 307) and pruned["task"] == "mlm"
assert pruned["train_flops_per_step"] < dense["train_flops_per_step"]
assert inference["mode"] == "inference" and inference["task"] == "cls" and "forward_flops_per_step" in inference and "phases_ms_median" not in inference
assert dense["threads"] == 2
PY
  expect_error "--prune-heads is 1, expected a value in [0, 1)" "$earlybert" bench --shape tiny --prune-heads 1
  expect_error "--task is 'qa', expected mlm or cls" "$earlybert" bench --shape tiny --task qa
  expect_error "--steps is 0, expected at least 1" "$earlybert" bench --shape tiny --steps 0
  ;;
resume)
  # A run killed with SIGKILL at random steps, each time resumed with --resume, ends bit-identical to
  # an uninterrupted run: weights, ticket record and metrics (but for timing fields).
  # EarlyBERT fine-tuning (19 search steps here, 76 efficient) with the gradient criterion, whose
  # accumulated scores, like the detector's window and the step-0 weights, must come back: the first
  # kill lands in the search (at step 4-11: a machine would have to run 8 steps in the time the loop
  # takes to notice a step and kill, about 10 ms, to miss it), and 12 kills of 2 or more steps each
  # reach the efficient stage.
  base=("$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --batch 16 --threads 2 --shape tiny --seed 7)
  eb=("${base[@]}" --epochs 6 --earlybert --eb-interval 2 --eb-window 3 --ticket gradient)
  "${eb[@]}" --out eb_reference --metrics eb_reference.jsonl 2> /dev/null > /dev/null
  kill_and_resume eb_killed 12 $((4 + RANDOM % 8)) "${eb[@]}"
  grep -q "resuming from 'eb_killed/training_state.safetensors' at search step" eb_killed.log || fail "no resume in the search"
  grep -q "resuming from 'eb_killed/training_state.safetensors' at efficient step" eb_killed.log || fail "no resume in the efficient stage"
  cmp eb_reference/model.safetensors eb_killed/model.safetensors || fail "EarlyBERT: the resumed weights differ"
  cmp eb_reference/earlybert_ticket.json eb_killed/earlybert_ticket.json || fail "EarlyBERT: the ticket records differ"
  diff <(untimed eb_reference.jsonl) <(untimed eb_killed.jsonl) || fail "EarlyBERT: the metrics differ"
  # Dense pre-training, with evaluations between the kills.
  pretrain=("$earlybert" pretrain --corpus "$data/wikitext2/train_head.txt" --vocab "$vocab" --shape tiny --steps 40 --batch 8 \
    --seq 32 --eval-every 10 --eval-sequences 16 --threads 2)
  "${pretrain[@]}" --out mlm_reference --metrics mlm_reference.jsonl 2> /dev/null > /dev/null
  kill_and_resume mlm_killed 6 $((2 + RANDOM % 12)) "${pretrain[@]}"
  cmp mlm_reference/model.safetensors mlm_killed/model.safetensors || fail "pre-training: the resumed weights differ"
  diff <(untimed mlm_reference.jsonl) <(untimed mlm_killed.jsonl) || fail "pre-training: the metrics differ"

  # SIGTERM and SIGINT: the state is written after the step in progress and the run stops with
  # 128 + the signal and one line saying where the state is; nothing else is written.
  long=("${base[@]}" --epochs 40 --checkpoint-every 0)
  for signal in TERM INT; do
    "${long[@]}" --out stopped_$signal --metrics stopped_$signal.jsonl 2> stopped_$signal.log & pid=$!
    while (( $(steps_in stopped_$signal.jsonl) + 0 < 5 )); do
      kill -0 $pid 2> /dev/null || fail "SIG$signal: the run ended before step 5: $(tail -n 2 stopped_$signal.log)"
      sleep 0.01
    done
    kill -$signal $pid
    status=0
    wait $pid || status=$?
    expected=$([[ $signal == TERM ]] && echo 143 || echo 130)
    [[ $status -eq $expected ]] || fail "SIG$signal: exit status $status, expected $expected"
    tail -n 1 stopped_$signal.log | grep -Eq "^earlybert finetune: (terminated \(SIGTERM\)|interrupted \(SIGINT\)) after step [0-9]+: the training state is in 'stopped_$signal/training_state.safetensors'; run the same command with --resume to continue$" \
      || fail "SIG$signal: $(tail -n 2 stopped_$signal.log)"
    [[ $(ls stopped_$signal) == training_state.safetensors ]] || fail "SIG$signal: more than the training state was written: $(ls stopped_$signal)"
  done
  # Resuming with other settings names the first that differs; without a state, the run starts afresh.
  expect_error "--resume: the training state 'stopped_TERM/training_state.safetensors' was written with other settings: --lr not given then, --lr 0.002 now" \
    "${long[@]}" --out stopped_TERM --metrics stopped_TERM.jsonl --resume --lr 0.002
  "${long[@]}" --out stopped_TERM --metrics stopped_TERM.jsonl --resume 2> continued.log || fail "the resumed run failed: $(tail -n 2 continued.log)"
  grep -q "^finetune: resuming from 'stopped_TERM/training_state.safetensors' at step [1-9]" continued.log || fail "no resume note"
  [[ ! -e stopped_TERM/training_state.safetensors && -e stopped_TERM/model.safetensors ]] || fail "the continued run did not complete"
  "${finetune[@]}" --out fresh --resume 2> fresh.log || fail "--resume without a training state did not run: $(cat fresh.log)"
  grep -q "note: --resume, but 'fresh' holds no training state: starting from the beginning" fresh.log || fail "no note: $(cat fresh.log)"
  ;;
bad-input)
  # One clear error line, exit status 1, and no output left behind.
  expect_error "--shape is 'huge', expected one of tiny (2/128/2/512)" \
    "$earlybert" finetune --train train.tsv "${common[@]}" --out x --shape huge
  expect_error "--batch is 0, expected at least 1" \
    "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --shape tiny --out x --batch 0
  expect_error "--accumulation is 5, expected at most --batch (4): each micro-batch holds an example" \
    "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --shape tiny --out x --batch 4 --accumulation 5
  expect_error "vocabulary 'missing.txt': cannot open the file for reading" \
    "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab missing.txt --shape tiny --out x
  expect_error "dataset 'nothing.tsv': cannot open the file for reading" \
    "$earlybert" finetune --train nothing.tsv "${common[@]}" --shape tiny --out x
  printf 'sentence\tlabel\ngood\t7\n' > badlabel.tsv
  expect_error "dataset 'badlabel.tsv': line 2: label 7 is outside [0, 2)" \
    "$earlybert" finetune --train badlabel.tsv "${common[@]}" --shape tiny --out x
  # Unreadable inputs: a directory where a file is expected, and a file without read permission
  # (as the unprivileged user 'nobody' when the tests run as root, whom permissions do not stop).
  mkdir -p adir
  expect_error "vocabulary 'adir': is a directory, expected a file" \
    "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab adir --shape tiny --out x
  expect_error "dataset 'adir': is a directory, expected a file" "$earlybert" finetune --train adir "${common[@]}" --shape tiny --out x
  expect_error "corpus 'adir': a folder without a .txt file, expected text files" "$earlybert" pretrain --corpus adir --vocab "$vocab" --shape tiny --out x
  expect_error "--eval-corpus '$data/wikitext2/valid_head.txt' is also a training file of --corpus ('$data/wikitext2/valid_head.txt'), expected held-out text" \
    "$earlybert" pretrain --corpus "$data/wikitext2" --eval-corpus "$data/wikitext2/valid_head.txt" --vocab "$vocab" --shape tiny --out x
  # 'nobody' may not be able to reach this folder: the program and its other inputs go to a
  # world-readable one under /tmp.
  open=$(mktemp -d /tmp/earlybert-unreadable.XXXXXX)
  chmod 777 "$open"
  cp "$earlybert" "$vocab" dev.tsv "$open"/
  cp train.tsv "$open"/locked.tsv && chmod 000 "$open"/locked.tsv
  as_user=()
  if [[ $(id -u) -eq 0 ]]; then
    command -v setpriv > /dev/null || fail "setpriv (util-linux) is needed to test unreadable files as root"
    as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  fi
  (cd "$open" && expect_error "dataset 'locked.tsv': cannot open the file for reading (Permission denied)" \
    "${as_user[@]}" ./earlybert finetune --train locked.tsv --dev dev.tsv --vocab "$(basename "$vocab")" --shape tiny --out x) \
    || fail "the unreadable file"
  # An output folder that cannot be written.
  mkdir -m 555 "$open/closed"
  (cd "$open" && expect_error "--out 'closed/x' cannot be created: '$open/closed' is not a writable directory" \
    "${as_user[@]}" ./earlybert finetune --train dev.tsv --dev dev.tsv --vocab "$(basename "$vocab")" --shape tiny --out closed/x) \
    || fail "the unwritable output folder"
  [[ ! -e x && ! -e $open/x && ! -e $open/closed/x ]] || fail "an output directory was created despite the errors"
  rm -rf "$open"
  expect_error "config 'nowhere/config.json': cannot open the file for reading" \
    "$earlybert" predict --checkpoint nowhere --input dev.tsv --out p.jsonl
  [[ ! -e p.jsonl ]] || fail "predict left an output behind"
  expect_error "--seq is 600, but the model has only 512 positions" \
    "$earlybert" pretrain --corpus "$data/wikitext2/train_head.txt" --vocab "$vocab" --shape tiny --out y --seq 600
  expect_error "--segment-pairs with --seq 4, expected at least 5" \
    "$earlybert" pretrain --corpus "$data/wikitext2/train_head.txt" --vocab "$vocab" --shape tiny --out y --seq 4 --segment-pairs
  expect_error "--save-dtype is 'f8', expected f32, f16 or bf16" "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --shape tiny --out x --save-dtype f8
  expect_error "--threads is -1" "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --shape tiny --out x --threads -1
  touch notdir
  expect_error "--out 'notdir' exists and is not a directory" "${finetune[@]}" --out notdir
  expect_error "--on-nonfinite is 'ignore', expected stop or skip" "${finetune[@]}" --out x --on-nonfinite ignore
  expect_usage "--overlap applies only under mpirun with two or more processes" "${finetune[@]}" --out x --overlap off
  expect_error "--checkpoint-every is -1, expected at least 1 (or 0 for only on SIGINT/SIGTERM)" "${finetune[@]}" --out x --checkpoint-every -1
  [[ ! -e x ]] || fail "finetune created its output despite the error"
  # A diverging run (a learning rate of 1e30) stops at the first non-finite loss, or skips such steps.
  finetune=("$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --batch 16 --threads 2 --shape tiny --seed 7)  # --steps, not --epochs
  status=0
  "${finetune[@]}" --out diverged --lr 1e30 --steps 4 2> diverged.txt || status=$?
  [[ $status -eq 1 ]] || fail "a diverged run exited with $status, expected 1"
  tail -n 1 diverged.txt | grep -q "^earlybert finetune: training step 2: the loss is" \
    || fail "the last line does not name the step and the loss: $(tail -n 3 diverged.txt)"
  [[ ! -e diverged ]] || fail "a checkpoint was written for a diverged run"
  "${finetune[@]}" --out skipped --lr 1e30 --steps 4 --on-nonfinite skip --metrics skipped.jsonl 2> skipped.txt \
    || fail "--on-nonfinite skip did not finish: $(cat skipped.txt)"
  grep -q "note: step 2 skipped (--on-nonfinite skip)" skipped.txt || fail "no note for the skipped step: $(cat skipped.txt)"
  grep -q '"step":2,"loss":null,.*"skipped":true' skipped.jsonl || fail "the skipped step is not marked in the metrics"
  # --out holds a finished run: another run is refused (the checkpoint untouched) unless --overwrite
  # says so; --overwrite and --resume together are a usage error. The run leaves its dev metrics and
  # summary beside the checkpoint.
  [[ -e skipped/eval_results.json && -e skipped/summary.json && -e skipped/tokenizer_config.json ]] || fail "no eval_results.json, summary.json or tokenizer_config.json: $(ls skipped)"
  grep -q '"eval_accuracy":' skipped/eval_results.json || fail "eval_results.json: $(cat skipped/eval_results.json)"
  before=$(md5sum < skipped/model.safetensors)
  expect_error "--out 'skipped' already holds a run's checkpoint ('model.safetensors'); give --overwrite to replace it, --resume to continue that run, or another --out" \
    "${finetune[@]}" --out skipped --steps 2
  [[ $(md5sum < skipped/model.safetensors) == "$before" ]] || fail "a refused run changed the checkpoint"
  expect_usage "--overwrite replaces what --out holds, --resume continues the run it holds: give one" "${finetune[@]}" --out skipped --overwrite --resume
  "${finetune[@]}" --out skipped --steps 2 --overwrite 2> /dev/null || fail "--overwrite did not replace the checkpoint"
  [[ $(md5sum < skipped/model.safetensors) != "$before" ]] || fail "--overwrite left the old checkpoint"
  ;;
notes)
  # Notes are lines of their own, "<subcommand>: note: ...", each printed once per process; they never
  # join the one error line; --quiet and EARLYBERT_QUIET=1 silence them (and status lines), never an
  # error. EARLYBERT_BLAS_NOTE=always prints the OpenBLAS note on any CPU and =never on none, so both
  # paths run on every machine.
  blas_note="^(finetune|predict): note: OpenBLAS runs its '[A-Za-z0-9]+' kernels"
  notes_in() { grep -Ec -- "$blas_note" "$1" || true; }
  # Forced on: errors found before any work (an option, a vocabulary) and after reading data (a label).
  export EARLYBERT_BLAS_NOTE=always
  expect_error "--batch is 0, expected at least 1" "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab "$vocab" --shape tiny --out x --batch 0
  [[ $(notes_in err.txt) -eq 1 ]] || fail "the forced note is not on stderr once: $(cat err.txt)"
  expect_error "vocabulary 'missing.txt': cannot open the file for reading" \
    "$earlybert" finetune --train train.tsv --dev dev.tsv --vocab missing.txt --shape tiny --out x
  [[ $(notes_in err.txt) -eq 1 ]] || fail "the forced note is not on stderr once: $(cat err.txt)"
  printf 'sentence\tlabel\ngood\t7\n' > badlabel.tsv
  expect_error "dataset 'badlabel.tsv': line 2: label 7 is outside [0, 2)" \
    "$earlybert" finetune --train badlabel.tsv "${common[@]}" --shape tiny --out x
  [[ $(notes_in err.txt) -eq 1 ]] || fail "the forced note is not on stderr once: $(cat err.txt)"
  # ... and in a run that completes: once, among the status lines.
  "${finetune[@]}" --out model 2> run.txt || fail "finetune failed: $(cat run.txt)"
  [[ $(notes_in run.txt) -eq 1 ]] || fail "the forced note is not on stderr once: $(cat run.txt)"
  grep -q "^finetune: step 19 dev accuracy" run.txt || fail "no status lines: $(cat run.txt)"
  # Silenced: the error alone, whole; a successful run writes nothing on stderr.
  for quiet in "EARLYBERT_BLAS_NOTE=never" "EARLYBERT_QUIET=1" "--quiet" "-q"; do
    settings=() options=()
    [[ $quiet == -* ]] && options=("$quiet") || settings=("$quiet")
    status=0
    env "${settings[@]}" "$earlybert" finetune --train badlabel.tsv "${common[@]}" --shape tiny --out x "${options[@]}" 2> err.txt || status=$?
    [[ $status -eq 1 ]] || fail "$quiet: exit status $status, expected 1"
    [[ $(cat err.txt) == "earlybert finetune: dataset 'badlabel.tsv': line 2: label 7 is outside [0, 2)" ]] \
      || fail "$quiet: stderr is not the error line alone: $(cat err.txt)"
  done
  env EARLYBERT_QUIET=1 "$earlybert" predict --checkpoint model --input dev.tsv --out p.jsonl 2> err.txt || fail "predict failed"
  [[ ! -s err.txt ]] || fail "EARLYBERT_QUIET=1: a successful run wrote on stderr: $(cat err.txt)"
  "$earlybert" predict --checkpoint model --input dev.tsv --out p.jsonl --quiet 2> err.txt || fail "predict failed"
  [[ ! -s err.txt ]] || fail "--quiet: a successful run wrote on stderr: $(cat err.txt)"
  # The switches themselves: a value they do not know is an error naming the variable.
  EARLYBERT_BLAS_NOTE=loud expect_error "the environment variable EARLYBERT_BLAS_NOTE is 'loud', expected auto, always or never" \
    "${finetune[@]}" --out x
  EARLYBERT_QUIET=yes expect_error "the environment variable EARLYBERT_QUIET is 'yes', expected 0 or 1" "${finetune[@]}" --out x
  [[ ! -e x ]] || fail "an output directory was created despite the errors"
  # Unforced (auto): the note says when OpenBLAS's kernels do not use a CPU's AVX-512, and only then;
  # which case this machine shows depends on its CPU and OpenBLAS's choice (read from bench), with
  # OPENBLAS_CORETYPE=Haswell and without it. The cases themselves are unit-tested.
  unset EARLYBERT_BLAS_NOTE
  for forced in Haswell ""; do
    run=(env -u OPENBLAS_CORETYPE)
    [[ -n $forced ]] && run=(env OPENBLAS_CORETYPE="$forced")
    core=$("${run[@]}" "$earlybert" bench --shape tiny --batch 1 --seq 8 --steps 1 --warmup 0 --json 2> /dev/null \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["openblas_core"])')
    "${run[@]}" "$earlybert" predict --checkpoint model --input dev.tsv --out p.jsonl 2> note.txt
    if grep -qw avx512f /proc/cpuinfo && [[ ! $core =~ SkylakeX|Cooperlake|SapphireRapids ]]; then
      grep -q "^predict: note: OpenBLAS runs its '$core' kernels, which do not use this CPU's AVX-512" note.txt \
        || fail "OPENBLAS_CORETYPE='$forced', kernels '$core': no note: $(cat note.txt)"
      [[ -z $forced ]] || grep -q "(OPENBLAS_CORETYPE=$forced selects them)" note.txt || fail "the note does not name OPENBLAS_CORETYPE"
    else
      [[ $(notes_in note.txt) -eq 0 ]] || fail "OPENBLAS_CORETYPE='$forced', kernels '$core' fit the CPU, yet a note: $(cat note.txt)"
    fi
    echo "OPENBLAS_CORETYPE='$forced': kernels '$core', notes: $(notes_in note.txt)"
  done
  ;;
misuse)
  # The command line misused as new users misuse it: every method flag without its method, methods
  # that exclude each other, parse errors (exit status 2, one line, before any work); values checked
  # before any file is read; every task kind's checkpoint given another kind's input (exit status 1,
  # naming the checkpoint's task and what it reads). Nothing is left behind.
  missing=(--vocab missing-vocab.txt)  # a refusal before any work never reaches the vocabulary
  tuning=("$earlybert" finetune --train train.tsv --dev dev.tsv "${missing[@]}" --shape tiny --out x)
  cases=0
  usage() { expect_usage "$@"; cases=$((cases + 1)); }
  refused() { expect_error "$@"; cases=$((cases + 1)); }
  # A flag without the method it belongs to.
  for flag in "--prune-heads 0.5" "--prune-ffn 0.5" "--heads-scope global" "--min-kept 2" "--l1-heads 0.1" "--eb-eps 0.2" \
              "--importance magnitude" "--detector never" "--restart-from draw" "--efficient-epochs 1" "--efficient-lr 1e-3"; do
    usage "${flag% *} applies only with --earlybert, which is not given: give --earlybert too, or leave ${flag% *} out" "${tuning[@]}" $flag
  done
  for flag in "--imp-levels 2" "--imp-rate 0.3" "--rewind-step 2" "--rewind-optimizer fresh" "--imp-structures"; do
    usage "${flag%% *} applies only with --imp, which is not given" "${tuning[@]}" $flag
  done
  usage "--imp-ranking applies only with unstructured --imp (without --imp-structures)" "${tuning[@]}" --imp --imp-structures --imp-ranking per-matrix
  usage "--imp-criterion applies only with --imp --imp-structures" "${tuning[@]}" --imp --imp-criterion taylor
  usage "--greedy-examples applies only with --imp --imp-structures --imp-criterion greedy" "${tuning[@]}" --imp --imp-structures --greedy-examples 4
  usage "--control applies only with --mask-from" "${tuning[@]}" --control random
  usage "--allocation applies only with --sparsity" "${tuning[@]}" --allocation erk
  usage "--rigl applies only with --sparsity" "${tuning[@]}" --rigl
  for flag in "--rigl-drop 0.2" "--rigl-interval 5" "--rigl-end 0.5"; do
    usage "${flag% *} applies only with --sparsity --rigl" "${tuning[@]}" --sparsity 0.5 $flag
  done
  usage "--lmc-points applies only with --lmc-step" "${tuning[@]}" --lmc-points 5
  usage "--weights applies only with an unstructured method" "${tuning[@]}" --imp --imp-structures --weights every-linear
  for flag in "--exit-threshold 0.2" "--exit-mode sentence" "--exit-measure max-probability" "--exit-window 1" "--self-sampling-epochs 2"; do
    usage "${flag% *} applies only with --early-exit" "${tuning[@]}" $flag
  done
  usage "--doc-stride applies only with --task squad" "${tuning[@]}" --doc-stride 64
  usage "--max-query applies only with --task squad" "${tuning[@]}" --max-query 32
  usage "--num-labels applies only with custom files" "$earlybert" finetune --task cola --data "$data/tasks/cola" "${missing[@]}" --shape tiny --out x --num-labels 3
  usage "--data applies only with --task" "$earlybert" finetune --data "$data/tasks/cola" "${missing[@]}" --shape tiny --out x
  usage "--eb-window applies only with --earlybert --detector mask-distance" "${tuning[@]}" --earlybert --detector fixed --draw-step 5 --eb-window 3
  usage "--draw-step applies only with --earlybert --detector fixed or fraction" "${tuning[@]}" --earlybert --draw-step 5
  usage "--absolute applies only with --earlybert --importance slimming" "${tuning[@]}" --earlybert --importance magnitude --absolute
  usage "--prune-heads applies only with --earlybert" "$earlybert" pretrain --corpus "$data/wikitext2/train_head.txt" "${missing[@]}" --shape tiny --out x --prune-heads 0.5
  # Methods that exclude each other, and settings given twice.
  usage "--earlybert and --imp are different training methods: give one" "${tuning[@]}" --earlybert --imp
  usage "--earlybert and --sparsity are different training methods" "${tuning[@]}" --earlybert --sparsity 0.5
  usage "--imp and --sparsity are different training methods" "${tuning[@]}" --imp --sparsity 0.5
  usage "--imp and --lmc-step are different training methods" "${tuning[@]}" --imp --lmc-step 2
  usage "--sparsity and --mask-from are different training methods" "${tuning[@]}" --sparsity 0.5 --mask-from somewhere
  usage "--sparsity and --lmc-step are different training methods" "${tuning[@]}" --sparsity 0.5 --lmc-step 3
  usage "--earlybert and --early-exit are different training methods" "$earlybert" finetune --task upos --data "$data/tasks/upos" "${missing[@]}" --shape tiny --out x --early-exit --earlybert
  usage "--epochs and --steps both set the run's length: give one" "${tuning[@]}" --epochs 2 --steps 3
  usage "--efficient-epochs and --efficient-steps both set the efficient stage's length" "${tuning[@]}" --earlybert --efficient-epochs 1 --efficient-steps 3
  usage "--init and --pretrain-steps both set the model the demo starts from: give one" "$earlybert" demo --out x --init somewhere --pretrain-steps 5
  usage "--pretrain-steps and --random-init both set the model the demo starts from" "$earlybert" demo --out x --pretrain-steps 5 --random-init
  usage "--init and --random-init both set the model the demo starts from" "$earlybert" demo --out x --init somewhere --random-init
  usage "--init and --shape both set the model's shape (a checkpoint's is in its config.json)" "$earlybert" demo --out x --init somewhere --shape mini
  usage "--pretrain-steps is 0, expected at least 1 (--random-init starts from random weights)" "$earlybert" demo --out x --pretrain-steps 0
  usage "--data names the task's directory, --train and --dev its files" "$earlybert" finetune --task cola --data "$data/tasks/cola" --train train.tsv "${missing[@]}" --shape tiny --out x
  # Parse errors.
  usage "earlybert finetune: The following argument was not expected: --bogus (see earlybert finetune --help)" "${tuning[@]}" --bogus
  usage "earlybert finetune: --out is required (see earlybert finetune --help)" "$earlybert" finetune --train train.tsv --dev dev.tsv "${missing[@]}" --shape tiny
  usage "earlybert finetune: Could not convert: --epochs = two (see earlybert finetune --help)" "${tuning[@]}" --epochs two
  usage "earlybert: A subcommand is required (see earlybert --help)" "$earlybert"
  usage "earlybert: 'train' is not a subcommand, expected one of pretrain, finetune, predict, demo, bench, inspect" "$earlybert" train --out x
  usage "earlybert predict: The following arguments were not expected: 3 --seed" "$earlybert" predict --checkpoint nowhere --input dev.tsv --out p.jsonl --seed 3
  usage "earlybert inspect: directory is required" "$earlybert" inspect
  # Values, refused before any file is read (the vocabulary is missing).
  refused "--shape is 'huge', expected one of tiny (2/128/2/512)" "$earlybert" finetune --train train.tsv --dev dev.tsv "${missing[@]}" --shape huge --out x
  refused "--shape is 'huge', expected one of tiny (2/128/2/512)" "$earlybert" demo --shape huge --out x
  refused "--task is 'glue', expected one of cola" "$earlybert" finetune --task glue --data "$data/tasks/cola" "${missing[@]}" --shape tiny --out x
  refused "--rigl-interval is 0, expected at least 1" "${tuning[@]}" --sparsity 0.5 --rigl --rigl-interval 0
  refused "--lmc-step measures the loss of sentence and tagging tasks, not of --task squad" \
    "$earlybert" finetune --task squad --data "$data/tasks/squad" "${missing[@]}" --shape tiny --out x --lmc-step 2
  refused "--imp-rate is 1, expected a value in (0, 1)" "${tuning[@]}" --imp --imp-rate 1
  [[ ! -e x && ! -e p.jsonl ]] || fail "a refused command left an output behind"
  # Every task kind's checkpoint given another kind's input.
  tasks=$data/tasks
  brief=("$earlybert" finetune --vocab "$vocab" --shape tiny --steps 1 --batch 8 --threads 2 --quiet)
  "${brief[@]}" --task cola --data "$tasks/cola" --max-seq 32 --out cola > /dev/null
  "${brief[@]}" --task ner --data "$tasks/ner" --max-seq 32 --out ner > /dev/null
  "${brief[@]}" --task upos --data "$tasks/upos" --max-seq 32 --out upos > /dev/null
  "${brief[@]}" --task squad --data "$tasks/squad" --max-seq 96 --out squad > /dev/null
  "${brief[@]}" --train train.tsv --dev dev.tsv --max-seq 32 --out custom > /dev/null
  predict() { "$earlybert" predict --checkpoint "$1" --input "$2" --out p.jsonl; }
  refused "--input '$tasks/rte/dev.tsv' is not an input of the checkpoint's task cola (a headerless TSV in CoLA's layout" predict cola "$tasks/rte/dev.tsv"
  refused "--input '$tasks/squad/dev-v1.1.json' is not an input of the checkpoint's task cola" predict cola "$tasks/squad/dev-v1.1.json"
  refused "--input '$tasks/upos/en_ewt-ud-dev.conllu' is not an input of the checkpoint's task ner (a CoNLL NER file" predict ner "$tasks/upos/en_ewt-ud-dev.conllu"
  refused "--input '$tasks/ner/emerging.dev.conll' is not an input of the checkpoint's task upos (a CoNLL-U file" predict upos "$tasks/ner/emerging.dev.conll"
  refused "--input '$tasks/cola/dev.tsv' is not an input of the checkpoint's task squad (a SQuAD v1.1 JSON file" predict squad "$tasks/cola/dev.tsv"
  refused "--input '$tasks/squad/dev-v1.1.json' is not an input of the checkpoint's task custom (a TSV whose header names" predict custom "$tasks/squad/dev-v1.1.json"
  # predict's flags that belong to a kind of checkpoint.
  usage "--doc-stride applies only with a question-answering checkpoint, and 'cola' is fine-tuned for cola" "$earlybert" predict --checkpoint cola --input "$tasks/cola/dev.tsv" --out p.jsonl --doc-stride 64
  usage "--exit-threshold applies only with a checkpoint with exits (finetune --early-exit), and 'ner' has none" "$earlybert" predict --checkpoint ner --input "$tasks/ner/emerging.dev.conll" --out p.jsonl --exit-threshold 0.3
  [[ ! -e x && ! -e p.jsonl ]] || fail "a refused command left an output behind"
  (( cases >= 40 )) || fail "only $cases misuse cases"
  # Help opens with examples and groups the flags by what they belong to.
  for sub in pretrain finetune predict inspect demo bench; do
    "$earlybert" $sub --help > help.txt || fail "$sub --help failed"
    [[ $(sed -n 3p help.txt) == "Examples:" && $(sed -n 4p help.txt) == "  earlybert $sub"* ]] || fail "$sub --help does not open with examples: $(head -n 5 help.txt)"
  done
  "$earlybert" finetune --help > help.txt
  for group in "Data and model:" "Training:" "SQuAD (--task squad):" "Running: threads, seeds, metrics, checkpoints:" "EarlyBERT (with --earlybert):" \
               "Lottery tickets (instead of --earlybert; docs/lottery.md):" "Early exit (UPOS and NER; docs/early_exit.md):"; do
    grep -qxF "$group" help.txt || fail "finetune --help has no group '$group'"
  done
  # On a terminal (script(1) gives the program one), a prediction shows its progress in place.
  script -qec "EARLYBERT_BLAS_NOTE=never '$earlybert' predict --checkpoint cola --input '$tasks/cola/dev.tsv' --out tty.jsonl --batch 16" /dev/null > tty.txt
  grep -q "predict: 100/100 rows" tty.txt || fail "no progress on a terminal: $(cat -v tty.txt)"
  echo "misuse: $cases cases refused as documented"
  ;;
bundled-model)
  # The bundled pre-trained model: its model card's held-out figures (held_out.json, from `predict` on
  # the bundled excerpt of WikiText-2 valid) reproduce from its files. GEMM kernels differ in their last
  # bits between CPUs, so the figures are compared to 1e-3.
  model="$data/pretrained/tiny"
  "$earlybert" predict --checkpoint "$model" --input "$data/wikitext2/valid_head.txt" --out held_out.json --threads 2
  python3 - "$model/held_out.json" <<'PY' || fail "the model card's held-out figures do not reproduce"
import json, sys
card, ours = json.load(open(sys.argv[1])), json.load(open("held_out.json"))
assert (card["sequences"], card["masked"]) == (ours["sequences"], ours["masked"]), (card, ours)
for key in ("masked_lm_loss", "masked_lm_accuracy"):
    assert abs(card["metrics"][key] - ours["metrics"][key]) < 1e-3, (key, card["metrics"][key], ours["metrics"][key])
PY
  grep -q "| the bundled excerpt of valid (\`data/wikitext2/valid_head.txt\`) | 192 | 3,627 | 4.4122 | 0.3284 |" "$model/README.md" \
    || fail "the model card's table does not show held_out.json's figures"
  ;;
*) fail "unknown case $case_name" ;;
esac
echo "cli $case_name: passed"
