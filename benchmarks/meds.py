"""MEDS in at scale: `clinical-ml import meds` on ~1M patient-years' worth of events, beside MEDS-Tab's window aggregates
of the same events, each in its own process, one at a time (time and peak RSS of the whole process tree).

    python benchmarks/meds.py [--patient_years 1000000] [--repeats 1] [--work /tmp/bench-meds]

The events: `clinical-ml generate` patient-years written as MEDS by `generate.to_meds` (`generate --format meds`).
Ours: events → patient-years of the synthetic record (`config/schemas/synthetic-meds.yaml`), checked against the
patient-years they were written from. MEDS-Tab 0.2.0 (PyPI `meds-tab`, in its own venv: its pins are not ours):
`meds-tab-describe` then `meds-tab-tabularize-time-series` with one 365-day window and the aggregates a patient-year
holds (code/count, value/count, value/sum, value/min, value/max), single process as ours. Writes results/meds.json.
"""
import argparse, json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
from _measure import ROWS_PER_PATIENT, median, run_tree, save

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / 'clinical-ml')
MEDS_TAB = Path(os.environ.get('MEDS_TAB_VENV', '/tmp/medstab-venv'))

def meds_tab_venv() -> Path:
    "A venv with meds-tab 0.2.0 (made once; kept out of the project's extras)."
    if not (MEDS_TAB / 'bin' / 'meds-tab-describe').exists():
        subprocess.run([sys.executable, '-m', 'venv', str(MEDS_TAB)], check=True)
        subprocess.run([str(MEDS_TAB / 'bin' / 'pip'), 'install', '-q', 'meds-tab==0.2.0'], check=True)
    return MEDS_TAB / 'bin'

def round_trip(raw: Path, years: Path) -> dict:
    "How the imported patient-years compare with the patient-years the events were written from."
    a = pd.read_parquet(raw).assign(patient_id=lambda d: d['patient_id'].str[1:].astype('int64').astype(str))
    b = pd.read_parquet(years)
    key = ['patient_id', 'year']
    for d in (a, b): d['year'] = d['year'].astype(int)
    m = a.merge(b, on=key, suffixes=('_raw', '_imp'), how='outer', indicator=True)
    both = m[m['_merge'] == 'both']
    out = dict(rows_raw=len(a), rows_imported=len(b), rows_matched=len(both), target_equal=bool((both['target_raw'] == both['target_imp']).all()))
    from clinical_ml import schema
    spec, raw_rows = schema.load_spec('synthetic'), a.set_index(key).loc[list(map(tuple, both[key].values))].reset_index()
    diffs, planted = {}, {}
    for c in ('glucose', 'systolic_bp', 'cholesterol', 'creatinine', 'num_visits', 'age'):
        x = pd.Series(schema.canonical_values(spec.cols[c], raw_rows), index=both.index)  # the raw rows are in the unit each was recorded in
        y = both[f'{c}_imp'].astype(float)
        ok = schema.in_range(spec.cols[c], x.to_numpy())  # the generator plants out-of-range errors (an age of 469): the events carry a birth date, not an age
        planted[c] = int((~ok).sum())
        diffs[c] = float(np.nanmax(np.abs(x[ok] - y[ok]))) if ok.any() else None
    out['raw_out_of_range_not_compared'] = planted
    out['max_abs_diff'] = diffs
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--patient_years', type=int, default=1_000_000)
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--work', default='/tmp/bench-meds')
    ap.add_argument('--no_meds_tab', action='store_true', help='ours alone (MEDS-Tab takes about 40x as long)')
    ap.add_argument('--name', default='meds', help='results/NAME.json')
    a = ap.parse_args()
    work = Path(a.work); shutil.rmtree(work, ignore_errors=True); work.mkdir(parents=True)
    n = round(a.patient_years / ROWS_PER_PATIENT)
    gen = run_tree([CLI, 'generate', '--num_patients', str(n), '--output_dir', str(work / 'raw')])
    assert gen['returncode'] == 0, gen['stderr']
    conv = run_tree([sys.executable, '-c', f"from clinical_ml.generate import to_meds; import json; print(json.dumps(to_meds({str(work / 'raw')!r}, {str(work / 'meds')!r})))"])
    assert conv['returncode'] == 0, conv['stderr']
    events = json.loads(conv['stdout'].strip().splitlines()[-1])
    ours, theirs = [], []
    bin_ = meds_tab_venv()
    (work / 'mt' / 'data' / 'train').mkdir(parents=True)  # MEDS-Tab reads split folders
    for f in sorted((work / 'meds' / 'data').glob('*.parquet')): (work / 'mt' / 'data' / 'train' / f.name).symlink_to(f)
    for i in range(a.repeats):
        shutil.rmtree(work / 'years', ignore_errors=True)
        r = run_tree([CLI, 'import', 'meds', str(work / 'meds'), '--spec', str(ROOT / 'config/schemas/synthetic-meds.yaml'), '--output', str(work / 'years')])
        assert r['returncode'] == 0, r['stderr'][-3000:]
        ours.append(r)
        if a.no_meds_tab: continue
        shutil.rmtree(work / 'mt' / 'out', ignore_errors=True)
        d = run_tree([str(bin_ / 'meds-tab-describe'), f"input_dir={work / 'mt' / 'data'}", f"output_dir={work / 'mt' / 'out'}"])
        assert d['returncode'] == 0, d['stderr'][-3000:]
        t = run_tree([str(bin_ / 'meds-tab-tabularize-time-series'), f"input_dir={work / 'mt' / 'data'}", f"output_dir={work / 'mt' / 'out'}",
                      'tabularization.window_sizes=[365d]', 'tabularization.aggs=[code/count,value/count,value/sum,value/min,value/max]',
                      'tabularization.min_code_inclusion_count=1'])
        assert t['returncode'] == 0, t['stderr'][-3000:]
        theirs.append(dict(seconds=d['seconds'] + t['seconds'], peak_rss_mib=max(d['peak_rss_mib'], t['peak_rss_mib']),
                           describe_seconds=d['seconds'], tabularize_seconds=t['seconds']))
    summary = json.loads(ours[-1]['stdout'].strip().splitlines()[-1])
    o = dict(seconds=median([x['seconds'] for x in ours]), peak_rss_mib=median([x['peak_rss_mib'] for x in ours]), runs=[round(x['seconds'], 1) for x in ours])
    m = None if a.no_meds_tab else dict(seconds=median([x['seconds'] for x in theirs]), peak_rss_mib=median([x['peak_rss_mib'] for x in theirs]), runs=[round(x['seconds'], 1) for x in theirs],
             describe_seconds=median([x['describe_seconds'] for x in theirs]), tabularize_seconds=median([x['tabularize_seconds'] for x in theirs]))
    res = dict(patient_years=summary['patient_years'], patients=summary['patients_kept'], events=events['events'], shards=summary['shards'],
               generate_seconds=round(gen['seconds'], 1), to_meds_seconds=round(conv['seconds'], 1),
               ours=o, meds_tab=m, ratio_seconds=m and round(m['seconds'] / o['seconds'], 2), ratio_peak_rss=m and round(m['peak_rss_mib'] / o['peak_rss_mib'], 2),
               round_trip=round_trip(work / 'raw', work / 'years'), import_summary=summary,
               meds_tab_output_mib=None if a.no_meds_tab else round(sum(f.stat().st_size for f in (work / 'mt' / 'out').rglob('*') if f.is_file()) / 2**20, 1))
    print(json.dumps(res, indent=1)); print(save(a.name, res))

if __name__ == '__main__': main()
