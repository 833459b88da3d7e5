"""Golden values for test/core/cocoeval.test.ts from the reference implementation (pycocotools).

Usage:
  OSPREY_GOLDEN_DUMP=/tmp/g node --import tsx --test test/core/cocoeval.test.ts   # writes /tmp/g/seed{1,2,3}.json
  python test/core/cocoeval-golden.py /tmp/g                                        # prints the GOLDEN table

Needs `pip install pycocotools numpy` (a developer tool, not a dependency of Osprey or its tests).
"""
import contextlib
import io
import json
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

out = {}
for seed in (1, 2, 3):
    d = json.load(open(f"{sys.argv[1]}/seed{seed}.json"))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {k: d[k] for k in ("images", "categories", "annotations")}
        gt.createIndex()
        dt = gt.loadRes(d["results"])
        e = COCOeval(gt, dt, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    p = e.eval["precision"]
    per_class = []
    for k in range(p.shape[2]):
        s = p[:, :, k, 0, -1]
        s = s[s > -1]
        per_class.append(float(s.mean()) if s.size else None)
    out[seed] = {"stats": [float(x) for x in e.stats], "perClass": per_class}
for seed, v in out.items():
    print(f"  {seed}: {json.dumps(v)},")
