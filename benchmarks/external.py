"""The reviewer's figures at scale, and external validation (issue 28): the `full` profile's data (~2M patient-years)
split as a user would split an extract (pandas), a model developed with `clinical-ml pipeline --profile full --data`,
validated with `clinical-ml evaluate`:

- leave sites out: developed on sites S01–S09, validated on S10–S12 (older patients, higher baseline risk), as it is
  and with intercept and logistic recalibration (fitted on half of the new patients, judged on the other half);
- later years: developed on every site's years up to 2022, validated on 2023–2025, as it is and recalibrated;
- the development run's own report: calibration intercept, slope, ICI and E90 with CIs, net benefit at the threshold
  against treat-all, the sample-size criterion against the rows used, the largest fairness gaps.

Writes benchmarks/results/external.json. Run it alone (about 30 minutes on 2 cores):

    .venv/bin/python benchmarks/external.py [--patients 600000]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from _measure import run_tree, save

ROOT = Path(__file__).parents[1]
CLI = str(Path(sys.executable).parent / 'clinical-ml')
SPLIT = '''import sys, pandas as pd
from clinical_ml import layout
from clinical_ml.ingest import write_years
raw, out, rule = sys.argv[1:]
rows, spec = pd.read_parquet(raw), layout.read_spec(raw)
keep = eval(rule, {}, {'rows': rows}).to_numpy()  # a pandas condition on `rows`, as a user would write it
write_years(rows[keep].reset_index(drop=True), spec, out, {'source': f'{raw} where {rule}'})
'''

def ci(v: dict, k: str) -> dict: return {'value': v[k], 'lo': v[f'{k}_lo'], 'hi': v[f'{k}_hi']}

def headline(s: dict) -> dict:
    "ROC-AUC, intercept and slope with CIs, and the rest of a validation summary."
    return {k: ci(s, k) for k in ('roc_auc', 'pr_auc', 'intercept', 'slope', 'ici', 'e90')} | {k: s[k] for k in ('rows', 'patients', 'outcomes', 'prevalence', 'mean_predicted', 'net_benefit', 'treat_all')}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--patients', type=int, default=600_000)
    ap.add_argument('--n_boot', type=int, default=200)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(dir='/tmp', prefix='bench-external-'))
    env = {**os.environ, 'MLFLOW_TRACKING_URI': f'sqlite:///{work}/mlflow.db'}
    def cli(*args, what=''):
        t = time.perf_counter(); r = run_tree([CLI, *map(str, args)], env=env, cwd=ROOT, interval=0.5)
        assert r['returncode'] == 0, (what, r['stderr'][-3000:])
        print(f'{what}: {r["seconds"]:.0f} s, peak {r["peak_rss_mib"]:.0f} MiB', flush=True)
        return r
    def split(out, rule):
        subprocess.run([sys.executable, '-c', SPLIT, work / 'raw', out, rule], check=True, timeout=3600)
    res = dict(patients=a.patients)
    try:
        cli('generate', '--num_patients', a.patients, '--output_dir', work / 'raw', '--seed', 11, what='generate')
        far = "rows.site.astype(str).isin(['S10', 'S11', 'S12'])"
        split(work / 'sites_01_09', f'~{far}'); split(work / 'sites_10_12', far)
        r = cli('pipeline', '--config', 'config/pipeline.yaml', '--profile', 'full', '--data', work / 'sites_01_09', '--output', work / 'run', what='pipeline on S01–S09')
        ea = json.loads((work / 'run' / 'report' / 'error_analysis.json').read_text())
        flow = {s['step']: s for s in ea['flow']}
        cal, dec = ea['calibration']['truths']['recorded'], ea['decision_curve']['at_threshold']
        res['development'] = dict(
            patient_years=flow['patient-years in the data set']['patient_years'], pool_rows=flow['development (training pool)']['patient_years'],
            test_rows=flow['test (held out)']['patient_years'], test=ea['overall'], pipeline_seconds=round(r['seconds'], 1),
            calibration={k: cal[k] for k in ('intercept', 'slope', 'ici', 'e50', 'e90', 'emax', 'brier', 'scaled_brier')},
            net_benefit=dec, sample_size=ea['sample_size'], fairness={a_: f['gaps'] for a_, f in ea['fairness'].items()},
            tripod_status={s: sum(1 for i in ea['tripod'] if i['status'] == s) for s in ('reported', 'partly', 'person', 'not applicable')})
        res['leave_sites_out'] = {}
        for how in ('intercept', 'logistic'):
            cli('evaluate', '--model', 'models:/clinical-ml@champion', '--data', work / 'sites_10_12', '--output', work / f'eval_{how}',
                '--recalibrate', how, '--n_boot', a.n_boot, what=f'evaluate S10–S12, {how}')
            s = json.loads((work / f'eval_{how}' / 'evaluation.json').read_text())
            res['leave_sites_out'].setdefault('as_is', headline(s['validation']))
            res['leave_sites_out'][how] = dict(before=headline(s['validation_before']), after=headline(s['validation_after']), update=s['recalibration'],
                                               registered=s.get('mlflow', {}).get('registered_uri'))
        res['leave_sites_out']['case_mix'] = s['case_mix'][:5]
        # later years: developed on every site's years up to 2022, validated on 2023–2025
        split(work / 'to_2022', 'rows.year.astype(int) <= 2022')
        cfg = work / 'train.yaml'; cfg.write_text((ROOT / 'config' / 'training_config.yaml').read_text())
        cli('train', '--config', cfg, '--data', work / 'to_2022', '--output', work / 'early', what='train on years ≤ 2022')
        cli('evaluate', '--model', work / 'early' / 'model', '--data', work / 'raw', '--years', '2023-2025', '--output', work / 'later',
            '--recalibrate', 'intercept', '--n_boot', a.n_boot, what='evaluate 2023–2025')
        s = json.loads((work / 'later' / 'evaluation.json').read_text())
        res['later_years'] = dict(as_is=headline(s['validation']), intercept=dict(before=headline(s['validation_before']), after=headline(s['validation_after']),
                                                                                 update=s['recalibration']), case_mix=s['case_mix'][:5])
        print(json.dumps({k: v for k, v in res.items() if k != 'development'}, indent=1, default=str)[:4000])
        print('wrote', save('external', res))
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
