"The `clinical-ml` command as a user runs it: a real process, real files."
import json, subprocess, sys
from clinical_ml import schema
from conftest import ROOT

def test_help_lists_subcommands(cli):
    r = cli('--help')
    assert r.returncode == 0
    for c in ['generate', 'features', 'train', 'serve', 'pipeline', 'validate', 'evaluate']: assert c in r.stdout

def test_import_schema_in_fresh_process():
    r = subprocess.run([sys.executable, '-c', 'import clinical_ml.schema as s; print(len(s.load_spec("synthetic").cols))'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and int(r.stdout) >= 25

def test_validate_seed_payload(cli):
    r = cli('validate', ROOT/'config/example_request.json')
    assert r.returncode == 0, r.stderr
    assert '1 record(s) match' in r.stdout

def test_validate_reports_bad_rows(cli, tmp_path):
    df = schema.example_rows(schema.load_spec('synthetic')).assign(gender=['M', 'X'], bmi=[28.0, 75.0])
    df.to_parquet(tmp_path/'bad.parquet')
    r = cli('validate', tmp_path/'bad.parquet')
    assert r.returncode == 2
    assert "gender: not one of ['M', 'F'] (1 row): row 1: 'X'" in r.stderr
    assert 'bmi: outside 10–60 kg/m2 (1 row): row 1: 75.0' in r.stderr

def test_validate_batch_json(cli, tmp_path):
    p = json.loads((ROOT/'config/example_request.json').read_text())
    (tmp_path/'batch.json').write_text(json.dumps({'patients': [p, {**p, 'year': 2025, 'age': 150}]}))
    r = cli('validate', tmp_path/'batch.json')
    assert r.returncode == 2 and 'age: outside 0–120 years (1 row): row 1: 150' in r.stderr

def test_missing_file_is_a_clear_error(cli):
    r = cli('validate', 'no/such.parquet')
    assert r.returncode == 2 and 'no/such.parquet: no such file or directory' in r.stderr

def test_unsupported_file_type(cli, tmp_path):
    (tmp_path/'x.txt').write_text('hi')
    r = cli('validate', tmp_path/'x.txt')
    assert r.returncode == 2 and "unsupported file type '.txt'" in r.stderr

def test_bad_flag_exits_2(cli):
    r = cli('generate', '--num_patients', 'many')
    assert r.returncode == 2 and 'invalid int value' in r.stderr


def test_evaluate_names_a_missing_model(cli, tmp_path):
    r = cli('evaluate', '--model', tmp_path/'nope', '--data', tmp_path, '--output', tmp_path/'out')
    assert r.returncode == 2 and 'no such model directory' in r.stderr and str(tmp_path/'nope') in r.stderr, r.stderr
    assert not (tmp_path/'out').exists()


def test_serving_imports_without_the_training_stack():
    "What the serving image lacks (Arrow, Dask, CatBoost, Optuna, papermill, plotly) is never imported by the API, the registry or the command: caught here before an image is built."
    code = ("import sys\nfor m in ('pyarrow', 'pyarrow.parquet', 'pyarrow.dataset', 'dask', 'distributed', 'catboost', 'optuna', 'papermill', 'plotly'): sys.modules[m] = None\n"
            "import clinical_ml.serve, clinical_ml.registry, clinical_ml.cli, clinical_ml.tripod\nprint('ok')")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith('ok'), r.stderr[-3000:]
