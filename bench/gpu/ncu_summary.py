"""Summarise `ncu --csv --metrics gpu__time_duration.sum` output of bench/gpu/kernels.ts: the kernels after the
marker (`Neg`) kernel, i.e. the measured runs, grouped by name, per run. A diagnostic.

    python3 bench/gpu/ncu_summary.py ncu.csv [runs=2]
"""
import csv
import re
import sys
from collections import defaultdict

path = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
rows = []
with open(path, newline='') as f:
    lines = [l for l in f if l.startswith('"')]
for r in csv.DictReader(lines):
    if r.get('Metric Name') != 'gpu__time_duration.sum':
        continue
    v = float(r['Metric Value'].replace(',', ''))
    unit = r.get('Metric Unit', 'nsecond')
    us = v / 1000 if unit.startswith('n') else v if unit.startswith('u') else v * 1000
    rows.append((r['Kernel Name'], us))
marks = [i for i, (k, _) in enumerate(rows) if 'Neg' in k]
if not marks:
    print(f'no marker kernel among {len(rows)} kernels')
    sys.exit(1)
after = rows[marks[-1] + 1:]
total = sum(us for _, us in after) / runs / 1000
print(f'{len(after) // runs} kernels per run, GPU time per run {total:.2f} ms (kernels timed one at a time by ncu)')
groups = defaultdict(lambda: [0.0, 0])
for k, us in after:
    name = re.sub(r'\(.*', '', k)[:110]
    groups[name][0] += us
    groups[name][1] += 1
for name, (us, n) in sorted(groups.items(), key=lambda x: -x[1][0])[:30]:
    print(f'{us / runs / 1000:8.3f} ms {n // runs:5d}x  {name}')
