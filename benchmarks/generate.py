"""Benchmark `clinical-ml generate` against the floor: a plain numpy + pyarrow single-process writer of random columns of
the same count and types. Writes benchmarks/results/generate.json.

    .venv/bin/python benchmarks/generate.py [--sizes 1000000 10000000] [--repeats 3]
"""
import argparse, json, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from _measure import run_tree, median, save

FLOOR = r'''
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
from clinical_ml import schema
n, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
fields = [pa.field(c, schema.arrow_type(col)) for c, col in schema.load_spec('synthetic').cols.items()]
w = pq.ParquetWriter(out, pa.schema(fields), compression='zstd')
for start in range(0, n, 1_000_000):
    m = min(1_000_000, n - start)
    cols = []
    for f in fields:
        t = f.type
        if pa.types.is_dictionary(t): cols.append(pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 3, m, dtype=np.int8)), pa.array(['a', 'b', 'c'])))
        elif pa.types.is_string(t): cols.append(pa.array(rng.integers(0, 10**9, m).astype('U10')))
        elif pa.types.is_floating(t): cols.append(pa.array(rng.random(m, dtype=np.float32)))
        elif pa.types.is_boolean(t): cols.append(pa.array(rng.random(m) < 0.5))
        else: cols.append(pa.array(rng.integers(0, 100, m).astype(t.to_pandas_dtype())))
    w.write_table(pa.Table.from_arrays(cols, schema=w.schema), row_group_size=131_072)
w.close()
'''

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sizes', type=int, nargs='+', default=[1_000_000, 10_000_000])
    ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args()
    py, cli = sys.executable, str(Path(sys.executable).parent / 'clinical-ml')
    rows_per_patient = 3.36  # mean rows per patient at the defaults (measured on 200k patients)
    results = []
    for n in a.sizes:
        reps = a.repeats if n <= 2_000_000 else 1
        floor, ours = [], []
        for _ in range(reps):
            with tempfile.TemporaryDirectory(dir='/tmp') as d:
                floor.append(run_tree([py, '-c', FLOOR, str(n), f'{d}/floor.parquet']))
                r = run_tree([cli, 'generate', '--num_patients', str(round(n / rows_per_patient)), '--output_dir', f'{d}/data'])
                assert r['returncode'] == 0, r['stderr']
                r['summary'] = json.loads(r['stdout'].strip().splitlines()[-1])
                ours.append(r)
        row = dict(target_rows=n, rows=ours[0]['summary']['rows'], repeats=reps,
                   floor_seconds=median([f['seconds'] for f in floor]), floor_peak_rss_mib=max(f['peak_rss_mib'] for f in floor),
                   ours_seconds=median([o['seconds'] for o in ours]), ours_peak_rss_mib=max(o['peak_rss_mib'] for o in ours),
                   ours_seconds_all=[round(o['seconds'], 2) for o in ours], prevalence=ours[0]['summary']['prevalence_observed'])
        row['ratio_to_floor'] = row['ours_seconds'] / row['floor_seconds']
        print(f"{n:>11,} rows: ours {row['ours_seconds']:.1f} s (peak {row['ours_peak_rss_mib']:.0f} MiB), floor {row['floor_seconds']:.1f} s "
              f"(peak {row['floor_peak_rss_mib']:.0f} MiB), ratio {row['ratio_to_floor']:.2f}x", flush=True)
        results.append(row)
    print('wrote', save('generate', dict(results=results)))

if __name__ == '__main__': main()
