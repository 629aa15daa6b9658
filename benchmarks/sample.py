"""What searching on a sample costs: `clinical-ml train` on the same features with the search's sample (`hpo.max_rows`)
at several sizes, the same trials budget, and the final fit always on every pool row; test ROC-AUC and PR-AUC of each,
with the paired difference from the largest sample on the same test rows. Writes benchmarks/results/sample.json.

    .venv/bin/python benchmarks/sample.py --features DIR [--sizes 20000 75000 300000] [--n_trials 10] [--timeout_minutes 3]
"""
import argparse, json, os, shutil, sys, tempfile
from pathlib import Path
import numpy as np, pandas as pd, yaml
sys.path.insert(0, str(Path(__file__).parent))
from _measure import run_tree, save

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--features', required=True, help='a features directory (e.g. 2M patient-years)')
    ap.add_argument('--sizes', type=int, nargs='+', default=[20_000, 75_000, 300_000])
    ap.add_argument('--n_trials', type=int, default=10)
    ap.add_argument('--timeout_minutes', type=float, default=3)
    ap.add_argument('--config', default=str(Path(__file__).parents[1] / 'config' / 'training_config.yaml'))
    a = ap.parse_args()
    from sklearn.metrics import average_precision_score, roc_auc_score
    from clinical_ml.metrics import paired
    cli = str(Path(sys.executable).parent / 'clinical-ml')
    work = Path(tempfile.mkdtemp(dir='/tmp'))
    runs, preds = {}, {}
    try:
        for s in a.sizes:
            cfg = yaml.safe_load(Path(a.config).read_text())
            cfg['hpo'].update(max_rows=s, n_trials=a.n_trials, timeout_minutes=a.timeout_minutes, algorithms=['lightgbm'])
            cfg['labels']['compare'] = []; cfg['evaluation']['baseline_max_rows'] = 50_000; cfg['mlflow']['enabled'] = False
            (work / f'{s}.yaml').write_text(yaml.safe_dump(cfg))
            print(f'search sample {s:,} …', flush=True)
            r = run_tree([cli, 'train', '--config', str(work / f'{s}.yaml'), '--data', a.features, '--output', str(work / str(s))], env=dict(os.environ))
            assert r['returncode'] == 0, r['stderr'][-3000:]
            m = json.loads((work / str(s) / 'model' / 'metrics.json').read_text())
            preds[s] = pd.read_parquet(work / str(s) / 'model' / 'predictions.parquet')
            runs[s] = dict(search_rows=m['sizes']['search'], pool_rows=m['pool_rows'], wall_seconds=round(r['seconds'], 1),
                           search_seconds=m['timings']['search'], trials=m['hpo']['trials'], best=m['hpo']['best'],
                           cv_roc_auc=m['cv']['roc_auc'], test=dict(roc_auc=m['test']['roc_auc'], pr_auc=m['test']['pr_auc']))
            print(f"  {r['seconds'] / 60:.1f} min, test ROC-AUC {m['test']['roc_auc']['value']:.4f}", flush=True)
        ref = max(a.sizes); y = preds[ref]['target'].to_numpy(int)
        stat = lambda y, p: dict(roc_auc=roc_auc_score(y, p), pr_auc=average_precision_score(y, p))
        for s in a.sizes:
            assert (preds[s][['patient_id', 'year']].to_numpy() == preds[ref][['patient_id', 'year']].to_numpy()).all()
            if s != ref: runs[s][f'minus_{ref}'] = paired(stat, y, preds[ref]['probability'].to_numpy(), preds[s]['probability'].to_numpy(), n_boot=500, seed=0,
                                                    groups=preds[ref]['patient_id'].to_numpy())
        print('wrote', save('sample', dict(features=a.features, rows=int(len(pd.read_parquet(a.features, columns=['year']))), reference=ref,
                                         runs={str(k): v for k, v in runs.items()})))
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
