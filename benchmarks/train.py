"""Benchmark `clinical-ml train` on generated data (default 2,000,000 patient-years): wall time and peak RSS of the whole
process tree, test quality against the oracle's ceiling, and the baselines trained side by side (logistic regression,
LightGBM defaults). Writes benchmarks/results/NAME.json (default train.json).

With --flaml, a peer AutoML runs on the same split: FLAML (a benchmark-only dependency) is given the training pool's
rows with every feature column, for each budget (`same`: the wall time our train stage took; or seconds), and scored on
the same test rows as our model: ROC-AUC, PR-AUC, ECE and Brier with bootstrap intervals, and the paired differences
(FLAML minus ours). The default profile's comparison:

    .venv/bin/python benchmarks/train.py [--rows 2000000] [--data DIR]
    .venv/bin/python benchmarks/train.py --rows 170000 --n_trials 12 --timeout_minutes 4 --flaml same 240 --name train_vs_flaml
"""
import argparse, json, shutil, sys, tempfile, time
from pathlib import Path
import numpy as np, yaml
sys.path.insert(0, str(Path(__file__).parent))
from _measure import run_tree, save, train_cli

def STAT(y, p):
    "The figures every side-by-side reports."
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
    from clinical_ml.metrics import ece
    return dict(roc_auc=roc_auc_score(y, p), pr_auc=average_precision_score(y, p), ece=ece(y, p), brier=brier_score_loss(y, p))

def calibration_context(d: dict, p, seed: int) -> dict:
    "What an ECE of probabilities `p` on `same_split` `d`'s test rows is read against: the ECE chance alone gives perfectly calibrated probabilities `p` there, and (on generated data) the calibration error against the true risk instead of the labels."
    from clinical_ml.metrics import ece, ece_by_chance
    return dict(ece_by_chance=ece_by_chance(p, seed=seed), true_calibration_error=None if d['p_true'] is None else ece(d['p_true'], p))

def scored(d: dict, p, seed: int) -> dict:
    "A peer's probabilities `p` on `same_split` `d`'s test rows: its figures, the paired differences from ours, and its `calibration_context`."
    from clinical_ml.metrics import bootstrap, paired
    return dict(metrics=bootstrap(STAT, d['y'], p, n_boot=500, seed=seed, groups=d['groups']),
                minus_ours=paired(STAT, d['y'], d['p_ours'], p, n_boot=500, seed=seed, groups=d['groups']), **calibration_context(d, p, seed))

def same_split(work: Path, cfg_path: str) -> dict:
    "Our run's split, read back: the training pool and the test rows with every feature column, and our test predictions, checked to be of those rows."
    import pandas as pd, pyarrow.parquet as pq
    from clinical_ml import layout
    from clinical_ml.config import TrainingConfig, load_config
    from clinical_ml.split import small_split
    from clinical_ml.train import KEY_COLS
    cfg = TrainingConfig.model_validate(load_config(cfg_path))
    fdir = work / 'out' / 'features'
    keys = layout.read_columns(fdir, KEY_COLS)
    sp, _ = small_split(keys, keys['target'].to_numpy(int), cfg.cross_validation, cfg.seed)  # the split training made (adapted to small data as it was)
    cols = [c for c in pq.read_schema(layout.parts(fdir)[0]).names if c not in KEY_COLS]
    test = keys[sp.test].reset_index(drop=True)
    ours = pd.read_parquet(work / 'out' / 'model' / 'predictions.parquet')
    ours = test[['patient_id', 'year']].astype({'year': 'int64'}).merge(ours.astype({'year': 'int64'}), on=['patient_id', 'year'], how='left')
    y, p_ours = test['target'].to_numpy(int), ours['probability'].to_numpy(float)
    assert not np.isnan(p_ours).any() and (ours['target'].to_numpy(int) == y).all(), 'our predictions do not match the test rows'
    orc = layout.oracle_for(fdir, test)  # the true risk of each test row, on generated data
    return dict(Xp=layout.read_columns(fdir, cols, sp.pool), yp=keys['target'].to_numpy(int)[sp.pool], Xt=layout.read_columns(fdir, cols, sp.test),
                y=y, p_ours=p_ours, cols=cols, groups=test['patient_id'].to_numpy(),  # intervals resample whole patients
                p_true=None if orc is None or orc['p_true'].isna().any() else orc['p_true'].to_numpy(float))

def flaml_runs(work: Path, cfg_path: str, budgets: list, our_seconds: float, seed: int = 0) -> dict:
    "FLAML on our run's training pool (every feature column), for each budget; its test scores beside ours, paired."
    from flaml import AutoML
    from clinical_ml.cluster import available_cpus, limit_threads
    from clinical_ml.metrics import bootstrap
    limit_threads()
    d = same_split(work, cfg_path)
    Xp, yp, Xt, y, p_ours = d['Xp'], d['yp'], d['Xt'], d['y'], d['p_ours']
    out = dict(pool_rows=len(Xp), test_rows=len(y), columns=len(d['cols']), ours=bootstrap(STAT, y, p_ours, n_boot=500, seed=seed, groups=d['groups']),
               ours_calibration=calibration_context(d, p_ours, seed), flaml={})
    for b in budgets:
        secs = float(our_seconds) if b == 'same' else float(b)
        t = time.perf_counter()
        am = AutoML()
        am.fit(Xp, yp, task='classification', metric='roc_auc', time_budget=secs, estimator_list=['lgbm', 'xgboost'],
               n_jobs=available_cpus(), seed=seed, verbose=0)
        fit_s = time.perf_counter() - t
        p = am.predict_proba(Xt)[:, 1]
        out['flaml'][str(b)] = dict(budget_seconds=round(secs, 1), seconds=round(fit_s, 1), best_estimator=am.best_estimator, **scored(d, p, seed))
        f = out['flaml'][str(b)]
        print(f"FLAML {secs:.0f} s ({f['best_estimator']}): ROC-AUC {f['metrics']['roc_auc']['value']:.4f} vs ours {out['ours']['roc_auc']['value']:.4f} "
              f"(FLAML − ours {f['minus_ours']['roc_auc']['value']:+.4f} [{f['minus_ours']['roc_auc']['lo']:+.4f}, {f['minus_ours']['roc_auc']['hi']:+.4f}]); "
              f"PR-AUC {f['metrics']['pr_auc']['value']:.4f} vs {out['ours']['pr_auc']['value']:.4f}; ECE {f['metrics']['ece']['value']:.4f} vs {out['ours']['ece']['value']:.4f}", flush=True)
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rows', type=int, default=2_000_000)
    ap.add_argument('--data', default=None, help='existing generated data (else generated here, not timed)')
    ap.add_argument('--config', default=str(Path(__file__).parents[1] / 'config' / 'training_config.yaml'))
    ap.add_argument('--n_trials', type=int, default=None, help='override hpo.n_trials (the default profile: 12)')
    ap.add_argument('--timeout_minutes', type=float, default=None, help='override hpo.timeout_minutes (the default profile: 4)')
    ap.add_argument('--flaml', nargs='*', default=None, help="FLAML budgets: 'same' (our train stage's wall time) and/or seconds")
    ap.add_argument('--name', default='train', help='results file name')
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(dir='/tmp'))
    try:
        cfg = yaml.safe_load(Path(a.config).read_text())
        if a.n_trials: cfg['hpo']['n_trials'] = a.n_trials
        if a.timeout_minutes: cfg['hpo']['timeout_minutes'] = a.timeout_minutes
        (work / 'cfg.yaml').write_text(yaml.safe_dump(cfg)); config = str(work / 'cfg.yaml')
        data = Path(a.data) if a.data else work / 'raw'
        if a.flaml is not None:  # time the train stage on features computed beforehand, as FLAML gets them
            cli = str(Path(sys.executable).parent / 'clinical-ml')
            if not data.exists():
                from _measure import ROWS_PER_PATIENT
                g = run_tree([cli, 'generate', '--num_patients', str(round(a.rows / ROWS_PER_PATIENT)), '--output_dir', str(data)]); assert g['returncode'] == 0, g['stderr']
            f = run_tree([cli, 'features', '--data', str(data), '--output', str(work / 'out' / 'features')]); assert f['returncode'] == 0, f['stderr']
            data = work / 'out' / 'features'
        _, r, m = train_cli(a.rows, data, config, work)
        t, o = m['test'], m.get('oracle', {})
        res = dict(rows=m['rows'], pool_rows=m['pool_rows'], test_rows=m['test_rows'], wall_seconds=r['seconds'], peak_rss_mib=r['peak_rss_mib'],
                   test={k: t[k] for k in ('roc_auc', 'pr_auc', 'brier', 'ece', 'sensitivity', 'specificity', 'ppv', 'npv', 'nns')},
                   oracle=o, baselines=m['baselines'], hpo=m['hpo'], calibration=m['calibration'], feature_selection=m['feature_selection'],
                   threshold=m['threshold'], cv=m['cv'], timings=m.get('timings'), n_trials=cfg['hpo']['n_trials'], timeout_minutes=cfg['hpo']['timeout_minutes'])
        print(f"{m['rows']:,} rows: train {r['seconds'] / 60:.1f} min, peak {r['peak_rss_mib'] / 1024:.2f} GiB | test ROC-AUC {t['roc_auc']['value']:.4f} "
              f"(oracle {o.get('roc_auc', float('nan')):.4f}, gap {o.get('roc_auc_gap', float('nan')):.4f}), PR-AUC {t['pr_auc']['value']:.4f}, "
              f"ECE {t['ece']['value']:.4f} | logistic {m['baselines']['logistic_regression']['roc_auc']:.4f}, "
              f"LightGBM defaults {m['baselines']['lightgbm_defaults']['roc_auc']:.4f}", flush=True)
        if a.flaml is not None: res['peer'] = flaml_runs(work, config, a.flaml, r['seconds'])
        print('wrote', save(a.name, res))
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
