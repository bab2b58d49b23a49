#!/usr/bin/env bash
# make demo: render sample pictures with mandel --frames, then run the image
# job over them on 2 MPI ranks, and say where everything is.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
RUN="$B/bin/mpc-run"
OUT="$B/demo"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== 1/2  rendering 8 sample pictures (mandel --frames 8)"
"$RUN" --no-progress --json "$OUT/mandel-summary.json" \
  --timeline "$OUT/mandel-timeline.png" \
  mandel --size 960x720 --iter 600 --frames 8 --zoom-step 2.5 \
  --center -0.743643887,0.131825904 --out "$OUT/frames"

echo
echo "== 2/2  resizing them to 480x360, brightness 1.2 (mpirun -n 2 mpc-run image)"
set +e
mpirun --oversubscribe -n 2 "$RUN" --no-progress \
  --journal "$OUT/image.journal" --json "$OUT/image-summary.json" \
  --timeline "$OUT/image-timeline.png" --trace "$OUT/image-trace.json" \
  image "$OUT/frames" "$OUT/resized" --size 480x360 --brightness 1.2 \
  2> >(tee "$OUT/image-summary.txt" >&2)
rc=$?
set -e
sleep 0.2 # let tee finish

echo
echo "Demo finished (exit $rc)."
echo "  sample pictures:   $OUT/frames/   ($(ls "$OUT/frames" | wc -l) PNG files)"
echo "  resized pictures:  $OUT/resized/  ($(ls "$OUT/resized" 2>/dev/null | wc -l) PNG files)"
echo "  run summary:       $OUT/image-summary.txt (also JSON: $OUT/image-summary.json)"
echo "  journal:           $OUT/image.journal (try --resume with it)"
echo "  timelines:         $OUT/mandel-timeline.png, $OUT/image-timeline.png (one row per worker)"
echo "  trace:             $OUT/image-trace.json (opens in Perfetto or chrome://tracing)"
exit $rc
