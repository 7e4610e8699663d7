#!/usr/bin/env bash
# Segmentation and detection on the default fashion-scenes split (10,000 train scenes of which
# 10 % validation, 2,000 test scenes): the two shipped experiments (about 30 minutes each on 2
# cores) and the fixed reference networks (reference/unet, reference/centernet) trained for
# REF_EPOCHS epochs with the task defaults. Prints one line per run with the test metric, the
# validation metric it was selected by and the wall time; the targets of the issue are
# mIoU (background included) ≥ 0.80 and mAP@0.5 ≥ 0.80 on the test split.
#   WHAT="search-seg search-det ref-seg ref-det" (default: all)   REF_EPOCHS=12
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${WHAT:-"search-seg search-det ref-seg ref-det"}
REF_EPOCHS=${REF_EPOCHS:-12}
OUT=Benchmarks/out/dense-tasks
mkdir -p "$OUT"
swift build -c release --product naslab >/dev/null
naslab=.build/release/naslab
value() { python3 -c "import json,sys; print('%.4f' % json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
for what in $WHAT; do
    start=$(date +%s)
    case $what in
        search-seg|search-det)
            task=$([ "$what" = search-seg ] && echo segmentation || echo detection)
            $naslab search "Experiments/fashion-scenes-$task.yaml" --output "$OUT/$task.h5" --overwrite --quiet > "$OUT/$task.txt"
            echo "$task search: $(grep '^best: ' "$OUT/$task.txt") ($(( $(date +%s) - start )) s)"
            ;;
        ref-seg)
            $naslab train --space reference/unet --dataset fashion-scenes --epochs "$REF_EPOCHS" --json --save "$OUT/unet.h5" > "$OUT/unet.json"
            echo "reference/unet ($REF_EPOCHS epochs): test mIoU $(value "$OUT/unet.json" test_miou)" \
                 "(no background $(value "$OUT/unet.json" test_miou_no_background), pixel accuracy $(value "$OUT/unet.json" test_pixel_accuracy))," \
                 "validation mIoU $(value "$OUT/unet.json" val_miou) ($(( $(date +%s) - start )) s)"
            ;;
        ref-det)
            $naslab train --space reference/centernet --dataset fashion-scenes --epochs "$REF_EPOCHS" --json --save "$OUT/centernet.h5" > "$OUT/centernet.json"
            echo "reference/centernet ($REF_EPOCHS epochs): test mAP@0.5 $(value "$OUT/centernet.json" test_map50)" \
                 "(mAP@[.5:.95] $(value "$OUT/centernet.json" test_map)), validation mAP@0.5 $(value "$OUT/centernet.json" val_map50)" \
                 "($(( $(date +%s) - start )) s)"
            ;;
        *) echo "unknown run '$what'" >&2; exit 64 ;;
    esac
done
