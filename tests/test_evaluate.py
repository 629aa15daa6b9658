"""External validation as a user runs it: a model developed on sites S01–S09 (registered in a real MLflow store),
`clinical-ml evaluate` on sites S10–S12 from the registry URI with an intercept recalibration registered as a new
version with its lineage, later years, a data set of another spec refused, and the update served with its card."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import httpx, pytest
from conftest import ROOT, BIN, free_port
from test_serve import start, stop

SPLIT = '''import sys, pandas as pd
from clinical_ml import layout
from clinical_ml.ingest import write_years
raw, dev, ext = sys.argv[1:]
rows, spec = pd.read_parquet(raw), layout.read_spec(raw)
far = rows['site'].astype(str).isin(['S10', 'S11', 'S12'])
write_years(rows[~far].reset_index(drop=True), spec, dev, {'source': raw + ', sites S01-S09'})
write_years(rows[far].reset_index(drop=True), spec, ext, {'source': raw + ', sites S10-S12'})
'''
CONFIG = 'hpo: {n_trials: 2, algorithms: [lightgbm]}\ncross_validation: {n_splits: 3}\nevaluation: {bootstrap: 50}\nlabels: {compare: []}\n'


@pytest.fixture(scope='module')
def sites(tmp_path_factory):
    "Generated data split by site with pandas, a model trained and registered on S01–S09."
    d = tmp_path_factory.mktemp('sites')
    env = {**os.environ, 'MLFLOW_TRACKING_URI': f"sqlite:///{d/'mlflow.db'}"}
    run = lambda *a: subprocess.run([str(BIN/'clinical-ml'), *map(str, a)], cwd=d, capture_output=True, text=True, timeout=1200, env=env)
    assert run('generate', '--output_dir', d/'raw', '--num_patients', 12000, '--seed', 7).returncode == 0
    (d/'split.py').write_text(SPLIT)
    r = subprocess.run([sys.executable, d/'split.py', d/'raw', d/'dev', d/'ext'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (d/'config.yaml').write_text(CONFIG)
    r = run('train', '--config', d/'config.yaml', '--data', d/'dev', '--output', d/'train')
    assert r.returncode == 0, r.stderr[-3000:]
    return d, env, run


def test_leave_sites_out_with_recalibration_registered(sites):
    d, env, run = sites
    r = run('evaluate', '--model', 'models:/clinical-ml@champion', '--data', d/'ext', '--output', d/'eval', '--recalibrate', 'intercept', '--n_boot', 100)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    b, a = s['validation_before'], s['validation_after']
    assert b['intercept_lo'] > 0, b  # the higher-risk sites are under-predicted, beyond noise
    assert a['intercept_lo'] < 0 < a['intercept_hi'] and abs(a['intercept']) < b['intercept'], a
    assert abs(a['roc_auc'] - b['roc_auc']) < 1e-9
    assert s['mlflow']['registered_version'] == 2, s['mlflow']
    import mlflow
    c = mlflow.MlflowClient(tracking_uri=env['MLFLOW_TRACKING_URI'])
    v2 = c.get_model_version('clinical-ml', '2')
    assert v2.tags['lineage.kind'] == 'recalibration' and v2.tags['lineage.parent_version'] == '1' and v2.tags['lineage.method'] == 'intercept', v2.tags
    assert str(c.get_model_version_by_alias('clinical-ml', 'champion').version) == '1'  # a site's update does not take the champion alias
    for v in ('1', '2'):  # the card is logged beside each version's model, for people reading MLflow
        assert {'model_card.md', 'model_card.json'} <= {a.path for a in c.list_artifacts(c.get_model_version('clinical-ml', v).run_id)}, v
    html = (d/'eval'/'evaluation.html').read_text()
    assert 'External validation of clinical-ml version 1' in html and 'Recalibration (intercept)' in html and 'Case mix' in html
    card = json.loads((d/'eval'/'model_card.json').read_text())
    assert card['lineage']['kind'] == 'recalibration' and card['external_validation']['rows'] == s['validation']['rows']
    p, url = start([], {'MODEL_URI': 'models:/clinical-ml/2', 'MLFLOW_TRACKING_URI': env['MLFLOW_TRACKING_URI'], 'RELOAD_FILE': str(d/'r.json')}, free_port())
    try:
        served = httpx.get(url + '/model/card', timeout=30).json()
        assert served['lineage']['intercept'] == pytest.approx(s['recalibration']['intercept'], abs=1e-5) and served['served']['version'] == '2', served
        assert '## Lineage' in httpx.get(url + '/model/card', params={'format': 'markdown'}, timeout=30).text
    finally: stop(p)


def test_later_years_and_another_spec_refused(sites):
    d, env, run = sites
    r = run('evaluate', '--model', d/'train'/'model', '--data', d/'ext', '--output', d/'later', '--years', '2024-2025', '--n_boot', 50)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s['years'] == [2024, 2025] and 'recalibration' not in s and 0.5 < s['validation']['roc_auc'] < 1
    assert "rows before 2025 (the model's first test year)" in s['caution'], s['caution']  # 2024 may hold rows it was trained on: said
    shutil.copytree(d/'ext', d/'other')
    shutil.copy(ROOT/'config'/'schemas'/'pbc.yaml', d/'other'/'_dataset.yaml')
    r = run('evaluate', '--model', d/'train'/'model', '--data', d/'other', '--output', d/'refused')
    assert r.returncode == 2 and "described by spec 'pbc'" in r.stderr and 'trained on spec' in r.stderr, r.stderr[-2000:]
    assert not (d/'refused').exists()
