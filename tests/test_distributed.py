"Training on a real Dask cluster (`dask scheduler` + two `dask worker` processes on 127.0.0.1) against the same run in one process; threads sized to the CPUs a process may use."
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest, yaml
from conftest import BIN

# A short search on a patient sample smaller than the pool, so the final fit sees rows the search never did.
CFG = {'hpo': {'n_trials': 3, 'algorithms': ['lightgbm'], 'timeout_minutes': 30, 'max_rows': 8000, 'linear': False}, 'cross_validation': {'n_splits': 2},
       'feature_selection': {'max_features': 30}, 'evaluation': {'bootstrap': 50}, 'labels': {'compare': ['exact', 'window']},
       'processing': {'dask_config': {'n_workers': 1}}}


@pytest.fixture(scope='module')
def feats(tmp_path_factory):
    d = tmp_path_factory.mktemp('dist')
    for cmd in (['generate', '--num_patients', '9000', '--output_dir', str(d/'raw'), '--seed', '11'],
                ['features', '--data', str(d/'raw'), '--output', str(d/'features')]):
        r = subprocess.run([str(BIN/'clinical-ml'), *cmd], capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
    (d/'cfg.yaml').write_text(yaml.safe_dump(CFG))
    return d


def train(d, out, *extra, env=None):
    r = subprocess.run([str(BIN/'clinical-ml'), 'train', '--config', str(d/'cfg.yaml'), '--data', str(d/'features'), '--output', str(d/out), *extra],
                       capture_output=True, text=True, timeout=1200, env={**os.environ, 'MLFLOW_TRACKING_URI': f'sqlite:///{d}/mlflow.db', **(env or {})})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((d/out/'model'/'metrics.json').read_text())


def test_training_on_a_real_cluster_matches_one_process(feats, dask_cluster):
    one = train(feats, 'one')
    dist = train(feats, 'dist', '--scheduler', dask_cluster)
    assert one['distributed']['enabled'] is False
    d = dist['distributed']
    assert d['enabled'] and d['engine'] == 'lightgbm data-parallel on Dask workers' and d['scheduler'] == dask_cluster
    assert (d['workers'], d['threads']) == (2, 2)
    # searched on a sample, fitted on every pool row
    assert dist['sizes']['search'] < d['rows'] == dist['pool_rows'] == one['pool_rows']
    assert dist['hpo']['best'] == one['hpo']['best']  # the same search on the same sample
    # the same model up to the engine (data-parallel LightGBM bins and bags its own partitions): on the same test rows the two
    # rank patients alike, and their test ROC-AUCs differ by less than half the test's own 95% interval
    pa, pb = (pd.read_parquet(feats/o/'model'/'predictions.parquet') for o in ('one', 'dist'))
    both = pa.merge(pb, on=['patient_id', 'year'], suffixes=('_one', '_dist'), validate='one_to_one')
    assert len(both) == len(pa) == len(pb) == one['test_rows']
    rho = both['probability_one'].corr(both['probability_dist'], method='spearman')
    assert rho >= 0.95, rho
    t = one['test']['roc_auc']
    assert abs(t['value'] - dist['test']['roc_auc']['value']) <= (t['hi'] - t['lo']) / 2, (t, dist['test']['roc_auc'])
    # the strategies were compared on the in-memory sample, every one refitted there
    assert set(dist['strategies']['results']) == {'exact', 'window'} and dist['strategies']['rows'] == dist['sizes']['in_memory']
    # the served model is the same kind: loads in a fresh process, compiled scorer and all
    code = ("import sys; from clinical_ml.model import load_model; m = load_model(sys.argv[1]); "
            "print(type(m.pipeline.steps[-1][1]).__name__, m.scorer() is not None)")
    r = subprocess.run([sys.executable, '-c', code, str(feats/'dist'/'model')], capture_output=True, text=True, timeout=300)
    assert r.stdout.split() == ['LGBMClassifier', 'True'], r.stderr[-2000:]
    p = pd.read_parquet(feats/'dist'/'model'/'predictions.parquet')
    assert len(p) == dist['test_rows'] and p['probability'].between(0, 1).all()


def test_environment_scheduler_selects_the_cluster(feats, dask_cluster):
    r = train(feats, 'env', env={'DASK_SCHEDULER_ADDRESS': dask_cluster})
    assert r['distributed']['scheduler'] == dask_cluster and r['distributed']['workers'] == 2


def test_threads_follow_the_cpus_a_process_may_use():
    "Under `taskset -c 0` every pool is one thread: BLAS/OpenMP, the boosting libraries, a local training cluster, the children's environment."
    code = '''
import json, os
from threadpoolctl import threadpool_info
from clinical_ml.cluster import available_cpus, limit_threads
from clinical_ml.estimators import estimator
from clinical_ml.distributed import training_cluster
limit_threads()
import numpy as np; np.ones((300, 300)) @ np.ones((300, 300))
print(json.dumps(dict(cpus=available_cpus(), pools=max(p['num_threads'] for p in threadpool_info()),
    lgb=estimator('lightgbm', {}, False, 0).n_jobs, xgb=estimator('xgboost', {}, False, 0).n_jobs,
    cb=estimator('catboost', {}, False, 0).get_params()['thread_count'], cluster=training_cluster({'n_workers': 4}),
    env=os.environ['OMP_NUM_THREADS'])))
'''
    env = {k: v for k, v in os.environ.items() if k not in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')}
    r = subprocess.run(['taskset', '-c', '0', sys.executable, '-c', code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == dict(cpus=1, pools=1, lgb=1, xgb=1, cb=1, env='1',
                       cluster=dict(n_workers=1, threads_per_worker=1, processes=True, memory_limit=0)), got
