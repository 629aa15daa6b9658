"""Benchmark the features stage. Writes benchmarks/results/features.json.

1. End to end: `clinical-ml features` (Dask LocalCluster, 2 workers) on generated data of each size: wall time and
   peak RSS of the whole process tree (memory must stay flat as the size grows).
2. Side by side on the same in-memory rows: our kernel (`features.build`: order by patient and year, then the
   features) against a well-written polars implementation (sort, per-patient lags as shift(k) masked where the
   patient changes or the gap exceeds the window, horizontal mean/min/max, lag, delta), for 10 variables over 3 years.
   Each runs in its own process; the median of --repeats runs is reported, with the ratio.

    .venv/bin/python benchmarks/features.py [--sizes 1000000 10000000] [--repeats 3]
"""
import argparse, json, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from _measure import run_tree, median, save

VARS = ['bmi', 'systolic_bp', 'diastolic_bp', 'heart_rate', 'cholesterol', 'ldl', 'hdl', 'glucose', 'hba1c', 'creatinine']

OURS = r'''
import sys, time, json, pandas as pd, pyarrow.parquet as pq
from clinical_ml.features import build, prepare, FeatureSpec, _values
from clinical_ml.generate import RECORD
VARS = %r
d = sys.argv[1]
cols = ['patient_id', 'year', *_values(RECORD), *VARS]
df = pq.read_table(d, columns=cols).to_pandas()  # year comes from the hive directories
df['year'] = df['year'].astype('int16')
df = prepare(df, RECORD, check=False)[0]
spec = FeatureSpec(RECORD, window=3, numeric=tuple(VARS), stats=('mean', 'min', 'max', 'lag', 'delta'), codes=False)
t0 = time.perf_counter()
out = build(df, spec)
print(json.dumps({'seconds': time.perf_counter() - t0, 'rows': len(out), 'columns': out.shape[1]}))
''' % (VARS,)

POLARS = r'''
import sys, time, json, polars as pl
VARS = %r
d = sys.argv[1]
df = pl.read_parquet(d + '/year=*/*.parquet', hive_partitioning=True, columns=['patient_id', 'year', *VARS]).with_columns(pl.col('year').cast(pl.Int16))
t0 = time.perf_counter()
df = df.sort(['patient_id', 'year'])
same = [(pl.col('patient_id').shift(k) == pl.col('patient_id')) & ((pl.col('year') - pl.col('year').shift(k)) <= 3) for k in (1, 2, 3)]
exprs = []
for v in VARS:
    lags = [pl.when(same[k - 1]).then(pl.col(v).shift(k)) for k in (1, 2, 3)]
    exprs += [pl.mean_horizontal(lags).alias(v + '_mean'), pl.min_horizontal(lags).alias(v + '_min'),
              pl.max_horizontal(lags).alias(v + '_max'), lags[0].alias(v + '_lag'), (pl.col(v) - lags[0]).alias(v + '_delta')]
out = df.with_columns(exprs)
print(json.dumps({'seconds': time.perf_counter() - t0, 'rows': out.height, 'columns': out.width}))
''' % (VARS,)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sizes', type=int, nargs='+', default=[1_000_000, 10_000_000])
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--data', nargs='*', default=[], help='existing generated data dirs, one per size (else generated here)')
    a = ap.parse_args()
    py, cli = sys.executable, str(Path(sys.executable).parent / 'clinical-ml')
    results = []
    for i, n in enumerate(a.sizes):
        work = Path(tempfile.mkdtemp(dir='/tmp'))
        try:
            data = Path(a.data[i]) if i < len(a.data) else work / 'raw'
            if not data.exists():
                r = run_tree([cli, 'generate', '--num_patients', str(round(n / 3.36)), '--output_dir', str(data)])
                assert r['returncode'] == 0, r['stderr']
            e2e = []
            for _ in range(a.repeats if n <= 2_000_000 else 1):
                r = run_tree([cli, 'features', '--data', str(data), '--output', str(work / 'features'), '--overwrite'])
                assert r['returncode'] == 0, r['stderr']
                r['summary'] = json.loads(r['stdout'].strip().splitlines()[-1]); e2e.append(r)
            ours, pol = [], []
            for _ in range(a.repeats):
                o = run_tree([py, '-c', OURS, str(data)]); assert o['returncode'] == 0, o['stderr']
                p = run_tree([py, '-c', POLARS, str(data)]); assert p['returncode'] == 0, p['stderr']
                ours.append(json.loads(o['stdout'])['seconds']); pol.append(json.loads(p['stdout'])['seconds'])
            row = dict(target_rows=n, rows=e2e[0]['summary']['rows'], feature_columns=e2e[0]['summary']['columns'],
                       e2e_seconds=median([r['seconds'] for r in e2e]), e2e_peak_rss_mib=max(r['peak_rss_mib'] for r in e2e),
                       e2e_seconds_all=[round(r['seconds'], 1) for r in e2e],
                       kernel_ours_seconds=median(ours), kernel_polars_seconds=median(pol),
                       kernel_ours_all=[round(x, 2) for x in ours], kernel_polars_all=[round(x, 2) for x in pol])
            row['kernel_ratio_ours_to_polars'] = row['kernel_ours_seconds'] / row['kernel_polars_seconds']
            print(f"{row['rows']:>11,} rows: features end to end {row['e2e_seconds']:.1f} s, peak {row['e2e_peak_rss_mib']:.0f} MiB, "
                  f"{row['feature_columns']} columns | kernel ours {row['kernel_ours_seconds']:.2f} s vs polars "
                  f"{row['kernel_polars_seconds']:.2f} s: ratio {row['kernel_ratio_ours_to_polars']:.2f}x", flush=True)
            results.append(row)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print('wrote', save('features', dict(results=results)))

if __name__ == '__main__': main()
