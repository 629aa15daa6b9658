"""Benchmark `clinical-ml train` with the default config on generated data (default 2,000,000 patient-years): wall time
and peak RSS of the whole process tree (features included), test quality against the oracle's ceiling, and the
baselines trained side by side (logistic regression, LightGBM defaults). Writes benchmarks/results/train.json.

    .venv/bin/python benchmarks/train.py [--rows 2000000] [--data DIR]
"""
import argparse, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from _measure import save, train_cli

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rows', type=int, default=2_000_000)
    ap.add_argument('--data', default=None, help='existing generated data (else generated here, not timed)')
    ap.add_argument('--config', default=str(Path(__file__).parents[1] / 'config' / 'training_config.yaml'))
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(dir='/tmp'))
    try:
        _, r, m = train_cli(a.rows, a.data or work / 'raw', a.config, work)
        t, o = m['test'], m.get('oracle', {})
        res = dict(rows=m['rows'], pool_rows=m['pool_rows'], test_rows=m['test_rows'], wall_seconds=r['seconds'], peak_rss_mib=r['peak_rss_mib'],
                   test={k: t[k] for k in ('roc_auc', 'pr_auc', 'brier', 'ece', 'sensitivity', 'specificity', 'ppv', 'npv', 'nns')},
                   oracle=o, baselines=m['baselines'], hpo=m['hpo'], calibration=m['calibration'], feature_selection=m['feature_selection'],
                   threshold=m['threshold'], cv=m['cv'])
        print(f"{m['rows']:,} rows: train {r['seconds'] / 60:.1f} min, peak {r['peak_rss_mib'] / 1024:.2f} GiB | test ROC-AUC {t['roc_auc']['value']:.4f} "
              f"(oracle {o.get('roc_auc', float('nan')):.4f}, gap {o.get('roc_auc_gap', float('nan')):.4f}), PR-AUC {t['pr_auc']['value']:.4f}, "
              f"ECE {t['ece']['value']:.4f} | logistic {m['baselines']['logistic_regression']['roc_auc']:.4f}, "
              f"LightGBM defaults {m['baselines']['lightgbm_defaults']['roc_auc']:.4f}", flush=True)
        print('wrote', save('train', res))
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
