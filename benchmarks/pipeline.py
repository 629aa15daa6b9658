"""Benchmark `clinical-ml pipeline` on a profile: wall time and peak RSS of the whole process tree (the runner, every
papermill kernel, every Dask worker), and the run's key numbers. Writes benchmarks/results/pipeline_<profile>.json.

    .venv/bin/python benchmarks/pipeline.py --profile default      # the `make run` job: ≤ 10 minutes on 2 cores
    .venv/bin/python benchmarks/pipeline.py --profile low-memory   # the same size in ≤ 1 GiB
"""
import argparse, json, os, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from _measure import run_tree, save

ROOT = Path(__file__).parents[1]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--profile', default='default')
    ap.add_argument('--config', default=str(ROOT / 'config' / 'pipeline.yaml'))
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(dir='/tmp', prefix='bench-pipeline-'))
    try:
        env = {**os.environ, 'MLFLOW_TRACKING_URI': f'sqlite:///{work}/mlflow.db'}
        r = run_tree([str(Path(sys.executable).parent / 'clinical-ml'), 'pipeline', '--config', a.config, '--profile', a.profile,
                      '--output', str(work / 'run')], env=env, cwd=ROOT, interval=0.1)
        assert r['returncode'] == 0, r['stderr'][-3000:]
        s = json.loads((work / 'run' / 'summary.json').read_text())
        rows = json.loads((work / 'run' / 'data' / 'features' / '_summary.json').read_text())['rows']
        res = dict(profile=a.profile, patient_years=rows, wall_seconds=round(r['seconds'], 1), wall_minutes=round(r['seconds'] / 60, 2),
                   peak_rss_mib=round(r['peak_rss_mib'], 1), stages=s['stages'], test=s['test'], oracle=s['oracle'], threshold=s['threshold'])
        print(f"profile {a.profile}: {rows:,} patient-years, {r['seconds'] / 60:.1f} min, peak RSS {r['peak_rss_mib']:.0f} MiB, "
              f"test ROC-AUC {s['test']['roc_auc']} (oracle {s['oracle'].get('roc_auc')})", flush=True)
        print('wrote', save(f"pipeline_{a.profile.replace('-', '_')}", res))
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
