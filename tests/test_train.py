"`clinical-ml train` end to end: real MLflow store, registry alias, a fresh process loading the champion."
import shutil, json, subprocess, sys, textwrap
from pathlib import Path
import pandas as pd, pytest, yaml
from conftest import BIN

SMALL = {'hpo': {'n_trials': 2, 'algorithms': ['lightgbm', 'xgboost'], 'timeout_minutes': 30}, 'cross_validation': {'n_splits': 2},
         'feature_selection': {'max_features': 25}, 'evaluation': {'bootstrap': 30}, 'processing': {'dask_config': {'n_workers': 1}}}

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp('train')
    env = {'MLFLOW_TRACKING_URI': f'sqlite:///{d}/mlflow.db'}
    r = subprocess.run([str(BIN/'clinical-ml'), 'generate', '--num_patients', '3000', '--output_dir', str(d/'raw'), '--seed', '4'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    (d/'cfg.yaml').write_text(yaml.safe_dump(SMALL))
    def train(out, *extra):
        import os
        return subprocess.run([str(BIN/'clinical-ml'), 'train', '--config', str(d/'cfg.yaml'), '--data', str(d/'raw'), '--output', str(d/out), *extra],
                              capture_output=True, text=True, env={**os.environ, **env}, timeout=900)
    first = train('out')
    assert first.returncode == 0, first.stderr[-3000:]
    return dict(dir=d, env=env, train=train, first=first, result=json.loads(first.stdout.strip().splitlines()[-1]))

def test_artifacts_and_registry(run):
    res, d = run['result'], run['dir']
    assert 'local Dask cluster: 1 thread workers' in run['first'].stderr  # processing.dask_config sized the cluster that computed the features
    assert {p.name for p in (d/'out'/'model').iterdir()} >= {'config.yaml', 'data_hash.txt', 'features.json', 'metrics.json', 'model.joblib', 'predictions.parquet', 'threshold.json'}
    assert res['mlflow']['registered_version'] >= 1 and res['mlflow']['champion'] is True
    m = json.loads((d/'out'/'model'/'metrics.json').read_text())
    assert {'roc_auc', 'pr_auc', 'brier', 'ece', 'sensitivity', 'specificity', 'ppv', 'npv', 'nns'} <= set(m['test'])
    assert m['test']['roc_auc']['lo'] <= m['test']['roc_auc']['value'] <= m['test']['roc_auc']['hi']
    assert 'oracle' in m and m['oracle']['roc_auc'] > 0.5 and {'logistic_regression', 'lightgbm_defaults'} <= set(m['baselines'])
    assert m['threshold']['policy'] == 'min_sensitivity' and m['threshold']['validation']['sensitivity'] >= 0.8

LOAD = textwrap.dedent('''
    import json, sys, mlflow, pandas as pd
    m = mlflow.pyfunc.load_model("models:/clinical-ml@champion")
    assert m.metadata.signature is not None, "no signature"
    rows = pd.DataFrame(json.loads(sys.argv[1]))
    out = m.predict(rows)
    print(json.dumps(out.to_dict("list")))
    try:
        m.predict(rows.assign(age="old"))
        print("ACCEPTED-BAD")
    except Exception as e:
        print("REJECTED", type(e).__name__)
''')

def test_champion_loads_in_fresh_process_and_enforces_signature(run):
    import os
    rows = [{'patient_id': 'TEST001', 'year': 2023, 'age': 64.0, 'gender': 'M', 'bmi': 28.1, 'systolic_bp': 150.0, 'num_visits': 4,
             'glucose': 6.1, 'glucose_unit': 'mmol/L', 'smoking_status': 'Former', 'medications_count': None, 'primary_diagnosis': 'I10'},
            {'patient_id': 'TEST001', 'year': 2024, 'age': 65.0, 'gender': 'M', 'bmi': 28.5, 'systolic_bp': 160.0, 'diastolic_bp': 90.0,
             'cholesterol': 240.0, 'glucose': 120.0, 'smoking_status': 'Former', 'num_visits': 5, 'medications_count': 3.0,
             'lab_abnormal_flag': True, 'primary_diagnosis': 'I10', 'additional_diagnoses': 'E11'}]
    r = subprocess.run([sys.executable, '-c', LOAD, json.dumps(rows)], capture_output=True, text=True, cwd=run['dir'],
                       env={**os.environ, **run['env']}, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    out = json.loads(lines[-2])
    assert len(out['probability']) == 2 and all(0 <= p <= 1 for p in out['probability']) and set(out['prediction']) <= {0, 1}
    assert lines[-1].startswith('REJECTED'), lines[-1]

def test_resume_and_same_seed_same_metrics(run):
    second = run['train']('out')
    assert second.returncode == 0, second.stderr[-2000:]
    assert 'has 2 finished trials; running 0 more' in second.stderr
    a = json.loads(run['first'].stdout.strip().splitlines()[-1])['test']
    b = json.loads(second.stdout.strip().splitlines()[-1])['test']
    assert a == b

def test_bad_config_fails_before_training(run, tmp_path):
    (tmp_path/'bad.yaml').write_text(yaml.safe_dump({'imbalance': {'method': 'oversample'}}))
    r = subprocess.run([str(BIN/'clinical-ml'), 'train', '--config', str(tmp_path/'bad.yaml'), '--data', str(run['dir']/'raw'), '--output', str(tmp_path/'o')],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'imbalance.method must be one of' in r.stderr
    assert not (tmp_path/'o').exists()

def test_data_missing_required_column(run, tmp_path):
    raw = pd.read_parquet(run['dir']/'raw').drop(columns=['gender'])
    (tmp_path/'raw').mkdir(); raw.to_parquet(tmp_path/'raw'/'x.parquet')
    shutil.copy(run['dir']/'raw'/'_dataset.yaml', tmp_path/'raw')  # the data's spec, as beside any data set
    (tmp_path/'cfg.yaml').write_text(yaml.safe_dump(SMALL))
    r = subprocess.run([str(BIN/'clinical-ml'), 'train', '--config', str(tmp_path/'cfg.yaml'), '--data', str(tmp_path/'raw'), '--output', str(tmp_path/'o')],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'gender: required column is missing' in r.stderr

READ_OBVIOUS = textwrap.dedent('''
    import json, sys, mlflow, pandas as pd
    raw = pd.read_parquet(sys.argv[1])  # hive partitions and dictionary-encoded strings come back as categories
    cats = sorted(c for c in raw.columns if isinstance(raw[c].dtype, pd.CategoricalDtype))
    out = mlflow.pyfunc.load_model("models:/clinical-ml@champion").predict(raw)
    print(json.dumps({"categorical": cats, "rows": len(raw), "out": len(out), "ok": bool(out.probability.between(0, 1).all())}))
''')

def test_registered_model_takes_the_data_as_pandas_reads_it(run):
    import os
    r = subprocess.run([sys.executable, '-c', READ_OBVIOUS, str(run['dir']/'raw')], capture_output=True, text=True, cwd=run['dir'],
                       env={**os.environ, **run['env']}, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert {'year', 'gender'} <= set(res['categorical']), res
    assert res['out'] == res['rows'] and res['ok'], res
    assert run['result']['mlflow']['registered_uri'] == f"models:/clinical-ml/{run['result']['mlflow']['registered_version']}"
