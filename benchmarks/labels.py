"""Benchmark the diagnosis-year question (issue 15) at >= 1M patient-years: the champion under the three truths
(recorded, window, onset) with bootstrap CIs and the oracle's ceiling under each, lead time and the share of false
positives that are early flags, every label strategy x truth with paired CIs against `exact`, and the onset model's
lag estimate beside the generator's. Generates the data, trains with config/training_config.yaml (which compares every
strategy), writes benchmarks/results/labels.json.

    .venv/bin/python benchmarks/labels.py [--rows 1100000] [--data DIR] [--keep DIR]
"""
import argparse, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from _measure import save, train_cli

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rows', type=int, default=1_100_000)
    ap.add_argument('--data', default=None, help='existing generated data (else generated here)')
    ap.add_argument('--config', default=str(Path(__file__).parents[1] / 'config' / 'training_config.yaml'))
    ap.add_argument('--keep', default=None, help='keep the run directory here')
    a = ap.parse_args()
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(dir='/tmp'))
    work.mkdir(parents=True, exist_ok=True)
    try:
        gen, r, m = train_cli(a.rows, a.data or work / 'raw', a.config, work)
        pick = ('roc_auc', 'pr_auc', 'sensitivity', 'specificity', 'ppv')
        res = dict(rows=m['rows'], pool_rows=m['pool_rows'], test_rows=m['test_rows'], train_seconds=round(r['seconds'], 1),
                   generate_seconds=round(gen['seconds'], 1) if gen else None, peak_rss_mib=round(r['peak_rss_mib']),
                   algorithm=m['hpo'].get('best', {}).get('algorithm'), threshold=m['threshold'],
                   truths={t: {k: v[k] for k in pick} | {'prevalence': v['prevalence'], 'oracle': v['oracle'], 'minus_recorded': v.get('minus_recorded')}
                           for t, v in m['truths'].items()},
                   lead_time=m['lead_time'], onset_model=m.get('onset_model'), strategies=m['strategies'])
        print(f"{m['rows']:,} rows, {m['test_rows']:,} test rows; train {r['seconds'] / 60:.1f} min, peak {r['peak_rss_mib'] / 1024:.2f} GiB")
        for t, v in m['truths'].items():
            print(f"  {t:9s} prevalence {v['prevalence']:.3f}  ROC-AUC {v['roc_auc']['value']:.4f} [{v['roc_auc']['lo']:.4f}, {v['roc_auc']['hi']:.4f}]"
                  f"  PPV {v['ppv']['value']:.3f} [{v['ppv']['lo']:.3f}, {v['ppv']['hi']:.3f}]  oracle ROC-AUC {v['oracle']['roc_auc']:.4f}")
        lt = m['lead_time']
        print(f"  false positives recorded later: {lt['false_positives_early']} of {lt['false_positives']} ({lt['share_false_positives_early']:.1%})")
        print(f"  onset model lag estimate {m.get('onset_model', {}).get('lag_probs')} (generated {m.get('onset_model', {}).get('lag_probs_generated')})")
        for s, rr in m['strategies'].get('results', {}).items():
            cells = []
            for t, v in rr.items():
                d = v.get('minus_exact', {}).get('roc_auc')
                cells.append(f"{t} {v['roc_auc']['value']:.4f}" + (f" ({d['value']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}])" if d else ''))
            print(f'  {s:15s}', ' | '.join(cells))
        print('wrote', save('labels', res))
    finally:
        if not a.keep: shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
