"""Our champion against the simple models and an AutoML, on the same split, for several seeds of data and search
(issue 27). For each seed: the default profile's data (50,000 patients, generated with that seed), their features,
`clinical-ml train` with the default profile's search (12 trials, 4 min deadline) and that seed, then on our split's
training pool and test rows: logistic regression (our preprocessing, on the columns our model selected), LightGBM at
the library's defaults on every feature column, and FLAML given our train stage's wall time. Each is scored on the
same test rows as ours: ROC-AUC, PR-AUC, ECE with bootstrap intervals, and the paired differences (peer minus ours).
AutoGluon is not run: installing it would replace the boosting libraries of this environment (see the JSON's note).
Writes benchmarks/results/champion.json.

    .venv/bin/python benchmarks/champion.py [--seeds 1 2 3] [--patients 50000] [--n_trials 12] [--timeout_minutes 4]
"""
import argparse, json, shutil, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, yaml
sys.path.insert(0, str(Path(__file__).parent))
from _measure import run_tree, save, train_cli
from train import STAT, flaml_runs, same_split

ROOT = Path(__file__).parents[1]


def simple_peers(work: Path, cfg_path: str, seed: int) -> dict:
    "Logistic regression on our selected columns and LightGBM defaults on every column, fitted on our pool, scored on our test rows beside ours."
    from clinical_ml.estimators import model_pipeline
    from clinical_ml.metrics import bootstrap, paired
    d = same_split(work, cfg_path)
    selected = json.loads((work / 'out' / 'model' / 'features.json').read_text())
    selected = selected.get('columns', selected) if isinstance(selected, dict) else selected
    out = {}
    for name, algo, cols in (('logistic regression (selected columns)', 'logistic', [c for c in d['cols'] if c in set(selected)]),
                             ('LightGBM defaults (every column)', 'lightgbm', d['cols'])):
        cats = [c for c in cols if str(d['Xp'][c].dtype) == 'category']
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            p = model_pipeline(algo, {}, cats, [c for c in cols if c not in cats], {'method': 'none'}, seed).fit(d['Xp'][cols], d['yp']).predict_proba(d['Xt'][cols])[:, 1]
        out[name] = dict(seconds=round(time.perf_counter() - t, 1), columns=len(cols), metrics=bootstrap(STAT, d['y'], p, n_boot=500, seed=seed),
                         minus_ours=paired(STAT, d['y'], d['p_ours'], p, n_boot=500, seed=seed))
    return out


def one_seed(seed: int, patients: int, n_trials: int, timeout_minutes: float, work: Path) -> dict:
    cli = str(Path(sys.executable).parent / 'clinical-ml')
    cfg = yaml.safe_load((ROOT / 'config' / 'training_config.yaml').read_text())
    cfg['seed'] = seed; cfg['hpo'].update(n_trials=n_trials, timeout_minutes=timeout_minutes)
    (work / 'cfg.yaml').write_text(yaml.safe_dump(cfg)); config = str(work / 'cfg.yaml')
    g = run_tree([cli, 'generate', '--num_patients', str(patients), '--seed', str(seed), '--output_dir', str(work / 'raw')]); assert g['returncode'] == 0, g['stderr']
    f = run_tree([cli, 'features', '--data', str(work / 'raw'), '--output', str(work / 'out' / 'features')]); assert f['returncode'] == 0, f['stderr']
    _, r, m = train_cli(0, work / 'out' / 'features', config, work)
    fl = flaml_runs(work, config, ['same'], r['seconds'], seed)
    peers = {**simple_peers(work, config, seed), **{'FLAML at our wall time': dict(seconds=v['seconds'], budget_seconds=v['budget_seconds'], metrics=v['metrics'], minus_ours=v['minus_ours'],
                                                 best_estimator=v['best_estimator']) for v in fl['flaml'].values()}}
    res = dict(seed=seed, rows=m['rows'], pool_rows=m['pool_rows'], test_rows=m['test_rows'],
               train_seconds=r['seconds'], peak_rss_mib=r['peak_rss_mib'], ours=fl['ours'], champion=m.get('candidates'), hpo=m['hpo'],
               calibration=m['calibration'], timings=m.get('timings'), oracle=m.get('oracle'), peers=peers)
    o = res['ours']
    print(f"seed {seed}: ours ({(m.get('candidates') or {}).get('champion')}) {r['seconds']:.0f} s ROC-AUC {o['roc_auc']['value']:.4f} PR-AUC {o['pr_auc']['value']:.4f} "
          f"ECE {o['ece']['value']:.4f}; " + '; '.join(f"{k} {v['metrics']['roc_auc']['value']:.4f} / {v['metrics']['pr_auc']['value']:.4f} / {v['metrics']['ece']['value']:.4f}"
                                                       for k, v in peers.items()), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3])
    ap.add_argument('--patients', type=int, default=50_000)
    ap.add_argument('--n_trials', type=int, default=12)
    ap.add_argument('--timeout_minutes', type=float, default=4)
    ap.add_argument('--name', default='champion')
    a = ap.parse_args()
    runs = []
    for s in a.seeds:
        work = Path(tempfile.mkdtemp(dir='/tmp', prefix=f'champion-{s}-'))
        try: runs.append(one_seed(s, a.patients, a.n_trials, a.timeout_minutes, work))
        finally: shutil.rmtree(work, ignore_errors=True)
        save(a.name, dict(patients=a.patients, n_trials=a.n_trials, timeout_minutes=a.timeout_minutes, runs=runs,
                          note='AutoGluon 1.6.3 was not run: installing autogluon.tabular into this environment would replace its LightGBM, XGBoost, '
                               'CatBoost and scikit-learn; a separate environment reading the same split is left to do'))
    behind = {k: max(max(r['peers'][k]['metrics'][m]['value'] - r['ours'][m]['value'] for r in runs) for m in ('roc_auc', 'pr_auc')) for k in runs[0]['peers']}
    print('largest lead of a peer over ours across seeds (ROC-AUC or PR-AUC):', json.dumps(behind))


if __name__ == '__main__': main()
