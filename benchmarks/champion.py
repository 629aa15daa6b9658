"""Our champion against the simple models and an AutoML, on the same split, for several seeds of data and search
(issue 27). For each seed: the default profile's data (50,000 patients, generated with that seed), their features,
`clinical-ml train` with the default profile's search (12 trials, 4 min deadline) and that seed, then on our split's
training pool and test rows: logistic regression (our preprocessing, on the columns our model selected), LightGBM at
the library's defaults on every feature column, and FLAML given our train stage's wall time. Each is scored on the
same test rows as ours: ROC-AUC, PR-AUC, ECE with bootstrap intervals, and the paired differences (peer minus ours).
AutoGluon (`autogluon.tabular` 1.6.3, `medium_quality` preset, our train stage's wall time as its time limit) runs in
an environment of its own (created once under ~/.cache/clinical-ml-bench/autogluon: installing it here would replace
this environment's LightGBM, XGBoost, CatBoost and scikit-learn), reading the same pool and test rows from Parquet.
Writes benchmarks/results/champion.json (or NAME.json).

With `--data DIR` the data are a user's patient-years (a directory with its spec beside it, e.g. the Mayo PBC visits
imported by `clinical-ml import visits`) instead of generated ones; each seed is then a seed of the split and search.

    .venv/bin/python benchmarks/champion.py [--seeds 1 2 3] [--patients 50000] [--n_trials 12] [--timeout_minutes 4]
    .venv/bin/python benchmarks/champion.py --data data/pbc --name champion_pbc --seeds 1 2 3
    .venv/bin/python benchmarks/champion.py --name champion --summarize   # the spread and the bar of the runs on record
"""
import argparse, json, shutil, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, yaml
sys.path.insert(0, str(Path(__file__).parent))
from _measure import run_tree, save, train_cli
from train import flaml_runs, same_split, scored

ROOT = Path(__file__).parents[1]


def simple_peers(work: Path, cfg_path: str, seed: int) -> dict:
    "Logistic regression on our selected columns and LightGBM defaults on every column, fitted on our pool, scored on our test rows beside ours."
    from clinical_ml.estimators import model_pipeline
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
        out[name] = dict(seconds=round(time.perf_counter() - t, 1), columns=len(cols), **scored(d, p, seed))
    return out


AG_VENV = Path.home() / '.cache' / 'clinical-ml-bench' / 'autogluon'
AG_SCRIPT = '''import sys, time, pandas as pd
from autogluon.tabular import TabularPredictor
train, test, out, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
tr, te = pd.read_parquet(train), pd.read_parquet(test)
t = time.perf_counter()
pr = TabularPredictor(label='target', problem_type='binary', eval_metric='roc_auc', path=out + '.ag', verbosity=0).fit(tr, presets='medium_quality', time_limit=secs)
fit = time.perf_counter() - t
pd.DataFrame({'p': pr.predict_proba(te)[1].to_numpy(float)}).to_parquet(out)
print(fit, pr.model_best)
'''

def autogluon_env() -> Path:
    "The AutoGluon environment's Python (created and installed on first use)."
    py = AG_VENV / 'bin' / 'python'
    if not (AG_VENV / '.installed').exists():
        subprocess.run([sys.executable, '-m', 'venv', str(AG_VENV)], check=True)
        subprocess.run([str(py), '-m', 'pip', 'install', '-q', 'autogluon.tabular[lightgbm,xgboost,catboost]==1.6.3'], check=True, timeout=3600)
        (AG_VENV / '.installed').write_text('autogluon.tabular 1.6.3\n')
    return py

def autogluon_peer(work: Path, cfg_path: str, seconds: float, seed: int) -> dict:
    "AutoGluon (medium_quality, `seconds`) on our pool (every feature column), in its own environment; its test scores beside ours, paired."
    import pandas as pd
    d = same_split(work, cfg_path)
    d['Xp'].assign(target=d['yp']).to_parquet(work / 'ag_train.parquet'); d['Xt'].to_parquet(work / 'ag_test.parquet')
    (work / 'ag.py').write_text(AG_SCRIPT)
    r = subprocess.run([str(autogluon_env()), str(work / 'ag.py'), str(work / 'ag_train.parquet'), str(work / 'ag_test.parquet'), str(work / 'ag_pred.parquet'), str(seconds)],
                       capture_output=True, text=True, timeout=int(seconds) * 3 + 600)
    assert r.returncode == 0, r.stderr[-3000:]
    fit_s, best = r.stdout.strip().splitlines()[-1].split(' ', 1)
    p = pd.read_parquet(work / 'ag_pred.parquet')['p'].to_numpy(float)
    return dict(seconds=round(float(fit_s), 1), budget_seconds=round(seconds, 1), best_model=best, **scored(d, p, seed))

def one_seed(seed: int, patients: int, n_trials: int, timeout_minutes: float, work: Path, data: str | None = None) -> dict:
    cli = str(Path(sys.executable).parent / 'clinical-ml')
    cfg = yaml.safe_load((ROOT / 'config' / 'training_config.yaml').read_text())
    cfg['seed'] = seed; cfg['hpo'].update(n_trials=n_trials, timeout_minutes=timeout_minutes)
    (work / 'cfg.yaml').write_text(yaml.safe_dump(cfg)); config = str(work / 'cfg.yaml')
    if data is None:
        g = run_tree([cli, 'generate', '--num_patients', str(patients), '--seed', str(seed), '--output_dir', str(work / 'raw')]); assert g['returncode'] == 0, g['stderr']
    f = run_tree([cli, 'features', '--data', str(data or work / 'raw'), '--output', str(work / 'out' / 'features')]); assert f['returncode'] == 0, f['stderr']
    _, r, m = train_cli(0, work / 'out' / 'features', config, work)
    fl = flaml_runs(work, config, ['same'], r['seconds'], seed)
    ag = autogluon_peer(work, config, r['seconds'], seed)
    peers = {**simple_peers(work, config, seed), 'AutoGluon medium_quality at our wall time': ag, **{'FLAML at our wall time': v for v in fl['flaml'].values()}}
    res = dict(seed=seed, rows=m['rows'], pool_rows=m['pool_rows'], test_rows=m['test_rows'],
               train_seconds=r['seconds'], peak_rss_mib=r['peak_rss_mib'], ours=fl['ours'], **fl['ours_calibration'], champion=m.get('candidates'), hpo=m['hpo'],
               calibration=m['calibration'], timings=m.get('timings'), oracle=m.get('oracle'), peers=peers)
    o = res['ours']
    print(f"seed {seed}: ours ({(m.get('candidates') or {}).get('champion')}) {r['seconds']:.0f} s ROC-AUC {o['roc_auc']['value']:.4f} PR-AUC {o['pr_auc']['value']:.4f} "
          f"ECE {o['ece']['value']:.4f}; " + '; '.join(f"{k} {v['metrics']['roc_auc']['value']:.4f} / {v['metrics']['pr_auc']['value']:.4f} / {v['metrics']['ece']['value']:.4f}"
                                                       for k, v in peers.items()), flush=True)
    return res


BAR = dict(roc_auc=0.002, pr_auc=0.01)  # issue 27: no peer ahead of ours by more than this (point estimates), in every seed


def ece_context(r: dict) -> str:
    "FLAML's ECE and ours in a seed, each against the ECE chance alone gives perfectly calibrated probabilities on those rows, and, on generated data, the true risk's own ECE there and each model's calibration error against the true risk."
    fl, o = r['peers']['FLAML at our wall time'], r['ours']['ece']['value']
    if 'ece_by_chance' not in fl or 'ece_by_chance' not in r: return ''
    within = lambda e, c: 'within' if e <= c['hi'] else 'beyond'
    orc, f = (r.get('oracle') or {}).get('ece'), fl['metrics']['ece']['value']
    return (f": {f:.4f} against {o:.4f}, FLAML's {within(f, fl['ece_by_chance'])} and ours {within(o, r['ece_by_chance'])} what chance alone gives "
            f"perfectly calibrated probabilities on these rows (95% up to {fl['ece_by_chance']['hi']:.4f} and {r['ece_by_chance']['hi']:.4f})"
            + (f", the true risk's own ECE here {orc:.4f}" if orc is not None else '')
            + (f"; against the true risk instead of the labels, FLAML's calibration error {fl['true_calibration_error']:.4f} and ours {r['true_calibration_error']:.4f}"
               if fl.get('true_calibration_error') is not None and r.get('true_calibration_error') is not None else ''))


def summarize(runs: list) -> dict:
    "Each model's spread across seeds (mean, sd, min, max of ROC-AUC, PR-AUC, ECE), and for each seed whether the issue's bar held: no peer ahead by more than `BAR`, FLAML behind on PR-AUC and ECE."
    def metrics(r, k): return r['ours'] if k == 'ours' else r['peers'][k]['metrics']
    models = ['ours'] + [k for k in runs[0]['peers'] if all(k in r['peers'] for r in runs)]
    def stats(v): return dict(mean=float(np.mean(v)), sd=float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, min=float(min(v)), max=float(max(v)))
    spread = {k: {m: stats([metrics(r, k)[m]['value'] for r in runs]) for m in ('roc_auc', 'pr_auc', 'ece')} for k in models}
    def true_error(r, k): return (r if k == 'ours' else r['peers'][k]).get('true_calibration_error')
    for k in models:  # on generated data: the calibration error against the true risk, without the labels' noise
        if all(true_error(r, k) is not None for r in runs): spread[k]['true_calibration_error'] = stats([true_error(r, k) for r in runs])
    for k in models[1:]:  # the paired differences: the data change with the seed, the differences are what the bar is about
        spread[k]['minus_ours'] = {m: stats([r['peers'][k]['minus_ours'][m]['value'] for r in runs]) for m in ('roc_auc', 'pr_auc')}
    bar = []
    for r in runs:
        lead = {m: max(((k, v['metrics'][m]['value'] - r['ours'][m]['value']) for k, v in r['peers'].items()), key=lambda t: t[1]) for m in BAR}
        fl = r['peers'].get('FLAML at our wall time', {}).get('metrics')
        vs_flaml = None if fl is None else dict(pr_auc=r['ours']['pr_auc']['value'] > fl['pr_auc']['value'], ece=r['ours']['ece']['value'] < fl['ece']['value'])
        names = dict(roc_auc='ROC-AUC', pr_auc='PR-AUC', ece='ECE')
        broken = ([f"{lead[m][0]} ahead by {lead[m][1]:+.4f} {names[m]}" for m in BAR if lead[m][1] > BAR[m]]
                  + [f"FLAML's {names[m]} better than ours" + (ece_context(r) if m == 'ece' else '') for m, ok in (vs_flaml or {}).items() if not ok])
        te = None if fl is None else (true_error(r, 'ours'), true_error(r, 'FLAML at our wall time'))
        bar.append(dict(seed=r['seed'], largest_lead={m: dict(peer=k, value=v) for m, (k, v) in lead.items()}, ahead_of_flaml=vs_flaml,
                        better_calibrated_than_flaml_on_the_true_risk=None if te is None or None in te else te[0] < te[1], broken=broken, held=not broken))
    return dict(spread=spread, bar=bar, bar_rule=f"no peer ahead of ours by more than {BAR['roc_auc']} ROC-AUC or {BAR['pr_auc']} PR-AUC (points), and ahead of FLAML on PR-AUC and ECE")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3])
    ap.add_argument('--patients', type=int, default=50_000)
    ap.add_argument('--n_trials', type=int, default=12)
    ap.add_argument('--timeout_minutes', type=float, default=4)
    ap.add_argument('--name', default='champion')
    ap.add_argument('--data', default=None, help="a user's patient-years (a directory with its spec beside it) instead of generated data")
    ap.add_argument('--summarize', action='store_true', help='only (re)write the summary of the runs already in NAME.json')
    a = ap.parse_args()
    if a.summarize:
        d = json.loads((ROOT / 'benchmarks' / 'results' / f'{a.name}.json').read_text())
        d['summary'] = summarize(d['runs'])
        (ROOT / 'benchmarks' / 'results' / f'{a.name}.json').write_text(json.dumps(d, indent=1))
        print(json.dumps(d['summary']['bar'])); return
    runs = []
    for s in a.seeds:
        work = Path(tempfile.mkdtemp(dir='/tmp', prefix=f'champion-{s}-'))
        try: runs.append(one_seed(s, a.patients, a.n_trials, a.timeout_minutes, work, a.data))
        finally: shutil.rmtree(work, ignore_errors=True)
        save(a.name, dict(data=a.data or 'generated', patients=None if a.data else a.patients, n_trials=a.n_trials, timeout_minutes=a.timeout_minutes, runs=runs,
                          summary=summarize(runs), note='AutoGluon 1.6.3 runs in its own environment (~/.cache/clinical-ml-bench/autogluon) on the same pool and test rows'))
    print('the bar, seed by seed:', json.dumps(summarize(runs)['bar']))


if __name__ == '__main__': main()
