"""The production pipeline end to end on the tiny profile: every stage notebook through papermill, the registered model, the
report (checked in headless Chromium), resume after a failed stage, parameter errors, and papermill called directly."""
import json, os, subprocess, sys
from pathlib import Path
import pytest, yaml
from conftest import ROOT, BIN

CONFIG = ROOT / 'config' / 'pipeline.yaml'


def pipeline(out, config=CONFIG, env=None, cwd=None, profile='tiny'):
    return subprocess.run([str(BIN / 'clinical-ml'), 'pipeline', '--config', str(config), '--profile', profile, '--output', str(out)],
                          cwd=cwd or out.parent, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp('pipeline')
    env = {**os.environ, 'MLFLOW_TRACKING_URI': f'sqlite:///{d}/mlflow.db'}
    r = pipeline(d / 'run', env=env, cwd=d)  # from a directory outside the project
    assert r.returncode == 0, r.stderr[-4000:]
    return d, env, r


def test_every_stage_its_outputs_the_model_and_the_report(run):
    d, env, r = run
    out = d / 'run'
    for nb in ('01_generate', '02_features', '04_train', '07_error_analysis'):
        cells = json.loads((out / f'{nb}.ipynb').read_text())['cells']
        assert any('injected-parameters' in c['metadata'].get('tags', []) for c in cells), nb
        errors = [o for c in cells for o in c.get('outputs', []) if o.get('output_type') == 'error']
        assert not errors, (nb, errors)
    assert (out / 'data' / 'raw' / '_params.json').exists() and (out / 'data' / 'features' / '_summary.json').exists()
    assert (out / 'report' / 'eda.html').stat().st_size > 100_000
    rep = json.loads((out / 'train' / 'train_report.json').read_text())
    ea = json.loads((out / 'report' / 'error_analysis.json').read_text())
    assert abs(ea['overall']['roc_auc'] - rep['test']['roc_auc']['value']) < 1e-9  # the report analyses the model's own test rows
    assert 0.5 < ea['overall']['roc_auc'] <= ea['oracle']['roc_auc'] + 0.05
    assert len(ea['recommendations']) >= 3
    md = (out / 'report' / 'error_analysis.md').read_text()
    assert f"ROC-AUC {ea['overall']['roc_auc']:.3f}" in md and '## Improvement roadmap' in md
    s = json.loads((out / 'summary.json').read_text())
    assert s['test']['roc_auc'] == round(rep['test']['roc_auc']['value'], 4)
    assert 'test ROC-AUC' in r.stdout and 'oracle ceiling' in r.stdout and 'serve it: MODEL_DIR=' in r.stdout
    assert 'registered: models:/clinical-ml/' in r.stdout and 'models:/m-' not in r.stdout, r.stdout
    import mlflow
    client = mlflow.MlflowClient(tracking_uri=env['MLFLOW_TRACKING_URI'])
    champ = client.get_model_version_by_alias('clinical-ml', 'champion')
    assert champ.run_id == rep['mlflow']['run_id']
    logged = {Path(a.path).name for a in client.list_artifacts(champ.run_id, 'pipeline/notebooks')}
    assert logged == {'01_generate.ipynb', '02_features.ipynb', '04_train.ipynb', '07_error_analysis.ipynb'}
    assert 'error_analysis.html' in {Path(a.path).name for a in client.list_artifacts(champ.run_id, 'pipeline/report')}


def test_report_draws_in_a_real_browser(run, chromium):
    d, _, _ = run
    for page, figures in (('error_analysis.html', 8), ('eda.html', 7)):
        dom, log = chromium((d / 'run' / 'report' / page).as_uri())
        assert dom.count('class="main-svg"') >= figures, (page, dom.count('class="main-svg"'))  # plotly drew each figure
        console = [l for l in log.splitlines() if 'CONSOLE' in l]
        assert not [l for l in console if 'error' in l.lower() or 'uncaught' in l.lower()], console
    dom, _ = chromium((d / 'run' / 'report' / 'error_analysis.html').as_uri())
    for part in ('Calibration curve (spline-smoothed)', 'Decision curve: net benefit', 'Participant flow: from the source',  # the reviewer's parts, drawn
                 'Table 1: characteristics', 'TRIPOD+AI checklist', 'to be filled by a person', 'development (training pool)'):
        assert part in dom, part


def test_resume_after_a_failed_stage(run, tmp_path):
    d, env, _ = run
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg['profiles']['tiny']['train']['overrides']['cross_validation'] = {'gap': -1}
    (tmp_path / 'bad.yaml').write_text(yaml.safe_dump(cfg))
    r = pipeline(d / 'run', tmp_path / 'bad.yaml', env)
    assert r.returncode == 1, r.stderr[-3000:]
    assert 'stage train failed in nbs/04_train.ipynb, cell' in r.stderr and 'cross_validation.gap' in r.stderr, r.stderr[-3000:]
    assert 'generate: up to date' in r.stderr and 'features: up to date' in r.stderr
    assert not (d / 'run' / '_stages' / 'train.json').exists()
    r = pipeline(d / 'run', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((d / 'run' / 'summary.json').read_text())['stages']
    assert (s['generate']['skipped'], s['features']['skipped'], s['train']['skipped']) == (True, True, False)


def test_resume_is_never_stale(tmp_path):
    "An unchanged re-run runs nothing; a changed value in the training config's file (same path) retrains (the smoke profile: the mechanics, fast)."
    env = {**os.environ, 'MLFLOW_TRACKING_URI': f'sqlite:///{tmp_path}/mlflow.db'}
    train_cfg = tmp_path / 'training.yaml'
    train_cfg.write_text((ROOT / 'config' / 'training_config.yaml').read_text())
    cfg = yaml.safe_load(CONFIG.read_text()); cfg['stages']['train']['config'] = str(train_cfg)
    (tmp_path / 'p.yaml').write_text(yaml.safe_dump(cfg))
    rerun = lambda: pipeline(tmp_path / 'run', tmp_path / 'p.yaml', env, profile='smoke')
    r = rerun()
    assert r.returncode == 0, r.stderr[-3000:]
    r = rerun()
    s = json.loads((tmp_path / 'run' / 'summary.json').read_text())['stages']
    assert r.returncode == 0 and all(v['skipped'] for v in s.values()), s
    train_cfg.write_text(train_cfg.read_text().replace('min_sensitivity: 0.8', 'min_sensitivity: 0.75'))  # same file, new content
    r = rerun()
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / 'run' / 'summary.json').read_text())['stages']
    assert (s['generate']['skipped'], s['features']['skipped'], s['train']['skipped'], s['error_analysis']['skipped']) == (True, True, False, False), s
    assert 'changed: file:config' in r.stderr, r.stderr[-3000:]
    rep = json.loads((tmp_path / 'run' / 'train' / 'train_report.json').read_text())
    assert 'sensitivity >= 0.75' in rep['threshold']['explanation']


def test_bad_parameters_name_the_notebook_and_the_parameter(tmp_path):
    for stage, params, msg in [('train', {'n_trails': 5}, "nbs/04_train.ipynb has no parameter 'n_trails'"),
                               ('generate', {'num_patients': 'many'}, "parameter 'num_patients' of nbs/01_generate.ipynb takes int")]:
        cfg = yaml.safe_load(CONFIG.read_text())
        cfg['profiles']['tiny'][stage].update(params)
        (tmp_path / 'c.yaml').write_text(yaml.safe_dump(cfg))
        r = pipeline(tmp_path / 'run', tmp_path / 'c.yaml')
        assert r.returncode == 2 and msg in r.stderr, r.stderr[-2000:]
        assert not (tmp_path / 'run' / '01_generate.ipynb').exists()  # nothing ran
    r = pipeline(tmp_path / 'run', profile='huge')
    assert r.returncode == 2 and "no profile 'huge'" in r.stderr


def test_papermill_directly_from_any_directory(run, tmp_path):
    d, _, _ = run
    r = subprocess.run([str(BIN / 'papermill'), str(ROOT / 'nbs' / '04_train.ipynb'), str(tmp_path / 'out.ipynb'),
                        '-p', 'run_stage', 'True', '-p', 'data', str(d / 'run' / 'data' / 'features'), '-p', 'output', str(tmp_path / 'train'), '-p', 'n_trials', '1',
                        '-y', 'overrides: {hpo: {algorithms: [lightgbm]}, evaluation: {bootstrap: 0}, mlflow: {enabled: false}}'],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)  # config: the default, relative to the project root
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / 'train' / 'model' / 'model.joblib').exists()
    assert json.loads((tmp_path / 'train' / 'train_report.json').read_text())['hpo']['trials'] >= 1


def test_changing_library_code_reruns_the_stages_that_use_it(tmp_path):
    "On a copy of the project (its package first on the path): editing a module re-runs exactly the stages that run it."
    import shutil
    proj = tmp_path / 'project'
    for part in ('clinical_ml', 'nbs', 'config'): shutil.copytree(ROOT / part, proj / part, ignore=shutil.ignore_patterns('__pycache__', 'mlruns', '_proc'))
    shutil.copy(ROOT / 'settings.ini', proj / 'settings.ini')
    env = {**os.environ, 'PYTHONPATH': str(proj), 'MLFLOW_TRACKING_URI': f'sqlite:///{tmp_path}/mlflow.db'}
    def run_and_skipped():
        r = pipeline(tmp_path / 'run', proj / 'config' / 'pipeline.yaml', env, cwd=proj, profile='smoke')
        assert r.returncode == 0, r.stderr[-3000:]
        return r, {k: v['skipped'] for k, v in json.loads((tmp_path / 'run' / 'summary.json').read_text())['stages'].items()}
    run_and_skipped()
    with open(proj / 'clinical_ml' / 'error_analysis.py', 'a') as f: f.write('\n# an edit\n')
    r, skipped = run_and_skipped()
    assert skipped == {'generate': True, 'features': True, 'train': True, 'error_analysis': False}, skipped
    assert 'changed: code:error_analysis' in r.stderr, r.stderr[-3000:]
    with open(proj / 'clinical_ml' / 'features.py', 'a') as f: f.write('\n# an edit\n')
    r, skipped = run_and_skipped()
    assert skipped == {'generate': True, 'features': False, 'train': False, 'error_analysis': False}, skipped
