"""The scale curve: generate, features, train (default config) and error analysis at 0.2M, 2M, 6M and 20M patient-years,
each stage a separate command whose wall time and peak RSS of the whole process tree (Dask workers included) are measured.
Writes benchmarks/results/scale.json: a list of rows {"patient_years", "stage", "seconds", "peak_rss_mib"}, stage one of
generate, features, train, error_analysis, total; the total rows also carry roc_auc and oracle_roc_auc. Details (the
train stage's phases, the distributed fit, sizes) go to benchmarks/results/scale_details.json.

    .venv/bin/python benchmarks/scale.py [--sizes 200000 2000000 6000000 20000000] [--work DIR] [--keep]

Each stage's measurement is saved in WORK/<size>/<stage>.json as it finishes; a re-run reuses those (and the data) and
measures only what is missing, so an interrupted curve resumes. Without --keep, each size's data is deleted after it.
"""
import argparse, json, shutil, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from _measure import RESULTS, ROWS_PER_PATIENT, machine, run_tree

ROOT = Path(__file__).parents[1]
STAGES = ('generate', 'features', 'train', 'error_analysis')

def commands(n: int, w: Path, config: str) -> dict:
    cli, py = str(Path(sys.executable).parent / 'clinical-ml'), sys.executable
    ea = ('import sys; from clinical_ml.error_analysis import analyze; '
          'analyze(sys.argv[1], sys.argv[2], sys.argv[3])')
    return dict(generate=[cli, 'generate', '--num_patients', str(round(n / ROWS_PER_PATIENT)), '--output_dir', str(w / 'raw')],
                features=[cli, 'features', '--data', str(w / 'raw'), '--output', str(w / 'features')],
                train=[cli, 'train', '--config', config, '--data', str(w / 'features'), '--output', str(w / 'out')],
                error_analysis=[py, '-c', ea, str(w / 'out' / 'model'), str(w / 'features'), str(w / 'report')])

def measure(n: int, w: Path, config: str) -> dict:
    "Run the stages of size n that have no saved measurement; return {stage: measurement}."
    w.mkdir(parents=True, exist_ok=True)
    env = {'MLFLOW_TRACKING_URI': f'sqlite:///{w}/mlflow.db'}
    out = {}
    for stage, cmd in commands(n, w, config).items():
        f = w / f'{stage}.json'
        if f.exists(): out[stage] = json.loads(f.read_text()); continue
        import os
        print(f'{n:,} patient-years: {stage} …', flush=True)
        r = run_tree(cmd, env={**os.environ, **env}, cwd=w)
        if r['returncode'] != 0: raise SystemExit(f'{stage} at {n:,} failed:\n{r["stderr"]}')
        m = dict(seconds=round(r['seconds'], 1), peak_rss_mib=round(r['peak_rss_mib'], 1))
        print(f'  {m["seconds"]:.0f} s, peak {m["peak_rss_mib"] / 1024:.2f} GiB', flush=True)
        f.write_text(json.dumps(m)); out[stage] = m
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sizes', type=int, nargs='+', default=[200_000, 2_000_000, 6_000_000, 20_000_000])
    ap.add_argument('--work', default='/tmp/bench-scale')
    ap.add_argument('--config', default=str(ROOT / 'config' / 'training_config.yaml'))
    ap.add_argument('--keep', action='store_true', help="keep each size's data")
    a = ap.parse_args()
    rows_path, det_path = RESULTS / 'scale.json', RESULTS / 'scale_details.json'
    rows = json.loads(rows_path.read_text()) if rows_path.exists() else []
    details = json.loads(det_path.read_text())['sizes'] if det_path.exists() else {}
    for n in a.sizes:
        w = Path(a.work) / str(n)
        st = measure(n, w, a.config)
        m = json.loads((w / 'out' / 'model' / 'metrics.json').read_text())
        py = m['rows']
        rows = [r for r in rows if r['patient_years'] != py]
        rows += [dict(patient_years=py, stage=s, seconds=st[s]['seconds'], peak_rss_mib=st[s]['peak_rss_mib']) for s in STAGES]
        rows.append(dict(patient_years=py, stage='total', seconds=round(sum(st[s]['seconds'] for s in STAGES), 1),
                         peak_rss_mib=max(st[s]['peak_rss_mib'] for s in STAGES), roc_auc=round(m['test']['roc_auc']['value'], 4),
                         oracle_roc_auc=round(m.get('oracle', {}).get('roc_auc', float('nan')), 4)))
        details[str(py)] = dict(target=n, timings=m.get('timings'), distributed=m.get('distributed'), sizes=m.get('sizes'),
                                train_seconds_in_process=m.get('seconds'), hpo=dict(trials=m['hpo'].get('trials'), best=m['hpo'].get('best')),
                                test_roc_auc=m['test']['roc_auc'], oracle=m.get('oracle'), feature_selection=m['feature_selection'],
                                strategies_rows=m.get('strategies', {}).get('rows'))
        rows.sort(key=lambda r: (r['patient_years'], ('generate', 'features', 'train', 'error_analysis', 'total').index(r['stage'])))
        RESULTS.mkdir(exist_ok=True)
        rows_path.write_text(json.dumps(rows, indent=1))
        det_path.write_text(json.dumps(dict(machine=machine(), when=time.strftime('%Y-%m-%dT%H:%M:%S'), sizes=details), indent=1, default=str))
        tot = rows[-1] if rows[-1]['patient_years'] == py else next(r for r in rows if r['patient_years'] == py and r['stage'] == 'total')
        print(f"{py:,} patient-years: total {tot['seconds'] / 60:.1f} min, peak {tot['peak_rss_mib'] / 1024:.2f} GiB, "
              f"ROC-AUC {tot['roc_auc']} (oracle {tot['oracle_roc_auc']})", flush=True)
        if not a.keep: shutil.rmtree(w, ignore_errors=True)
    print('wrote', rows_path)

if __name__ == '__main__': main()
