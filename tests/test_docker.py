"""What can be proved of the images without a Docker engine (the build machines have none): the compose file validates
(Debian's docker-compose), both Dockerfiles pass hadolint, and each Dockerfile's install step and entry command, replayed
in a fresh venv from the same files the image copies, work: training trains and registers, serving answers /health
(and the image's HEALTHCHECK command says so)."""
import json, os, re, shlex, shutil, socket, subprocess, sys, time
from pathlib import Path
import httpx, pytest, yaml
from conftest import ROOT, BIN

DOCKER = ROOT / 'docker'


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    "(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."
    text = re.sub(r'\\\n', ' ', dockerfile.read_text())
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if ' ' in l.strip() else '') for l in text.splitlines()
            if l.strip() and not l.lstrip().startswith('#')]


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    ins = instructions(dockerfile)
    last = max(i for i, (k, _) in enumerate(ins) if k == 'FROM')
    return ins[last:]


def copy(args: str, into: Path):
    "Replay a COPY: a directory's contents go into the destination, files into it (a trailing /) or onto it."
    *files, dest = [x for x in args.split() if not x.startswith('--')]
    for f in files:
        source = ROOT / f.rstrip('/')
        if source.is_dir(): shutil.copytree(source, into / dest, dirs_exist_ok=True)
        else:
            target = into / dest / source.name if dest.endswith('/') else into / dest
            target.parent.mkdir(parents=True, exist_ok=True); shutil.copy(source, target)


def env_of(stage) -> dict:
    out = {}
    for k, v in stage:
        if k == 'ENV':
            for part in shlex.split(v): name, _, val = part.partition('='); out[name] = val
    return out


def test_compose_file_validates():
    if not shutil.which('docker-compose'):
        subprocess.run(['apt-get', 'update', '-qq'], check=True, timeout=600, capture_output=True)
        subprocess.run(['apt-get', 'install', '-y', '-qq', 'docker-compose'], check=True, timeout=900, capture_output=True,
                       env={**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'})
    r = subprocess.run(['docker-compose', '-f', str(DOCKER / 'docker-compose.yml'), 'config'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    s = cfg['services']
    assert set(s) == {'mlflow-server', 'clinical-ml-training', 'clinical-ml-serving'}
    assert any('8000' in str(p) for p in s['clinical-ml-serving']['ports']) and any('5000' in str(p) for p in s['mlflow-server']['ports'])
    assert s['clinical-ml-serving']['environment']['MODEL_URI'] == 'models:/clinical-ml@champion'
    assert s['clinical-ml-serving']['depends_on']['clinical-ml-training']['condition'] == 'service_completed_successfully'
    for name in s:  # the one store, shared: serving loads what training registered
        assert any(str(v).startswith('mlflow-store:') or (isinstance(v, dict) and v.get('source') == 'mlflow-store') for v in s[name]['volumes']), name
    assert 'mlflow-store' in cfg['volumes']


def test_dockerfiles_pass_hadolint():
    r = subprocess.run([str(BIN / 'hadolint'), str(DOCKER / 'Dockerfile.serving'), str(DOCKER / 'Dockerfile.training')], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr


def test_images_are_slim_non_root_and_the_serving_one_has_a_healthcheck():
    for f in ('Dockerfile.serving', 'Dockerfile.training'):
        stage = final_stage(DOCKER / f)
        assert stage[0][1].startswith('python:3.11-slim'), stage[0]
        assert [v for k, v in stage if k == 'USER'] == ['10001']
        runs = [v for k, v in stage if k == 'RUN']
        assert not any(re.search(r'\bgcc\b|g\+\+|build-essential|-dev\b', v) for v in runs)  # no build tools in the runtime stage
        apt = [v for v in runs if 'apt-get install' in v]
        assert all('--no-install-recommends' in v and 'rm -rf /var/lib/apt/lists' in v for v in apt), apt  # runtime libraries only, no cache
        assert any('libgomp1' in v for v in apt), f  # LightGBM/XGBoost need OpenMP, which the slim base lacks (the first fit crashed without it)
    assert any(k == 'HEALTHCHECK' and '/health' in v for k, v in final_stage(DOCKER / 'Dockerfile.serving'))


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    "The build stage replayed: the files it COPYs, then its RUN step, with /src and /opt/venv mapped to temporary paths."
    d = tmp_path_factory.mktemp('image')
    ins = instructions(DOCKER / 'Dockerfile.serving')
    build = ins[:max(i for i, (k, _) in enumerate(ins) if k == 'FROM')]
    src = d / 'src'; src.mkdir()
    for k, v in build:
        if k == 'COPY': copy(v, src)
    runs = [v for k, v in build if k == 'RUN']
    assert runs == ['sh docker/install.sh /opt/venv /src'], runs
    cmd = runs[0].replace('/opt/venv', str(d / 'venv')).replace('/src', str(src))
    r = subprocess.run(cmd, shell=True, cwd=src, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    assert instructions(DOCKER / 'Dockerfile.training')[:len(build)] == build  # both images build their venv the same way
    return d


@pytest.fixture(scope='module')
def trained(venv):
    "The training image's entry command, run in its WORKDIR layout with the venv on PATH."
    stage = final_stage(DOCKER / 'Dockerfile.training')
    work = venv / 'app'; work.mkdir()
    for k, v in stage:
        if k == 'COPY' and '--from' not in v: copy(v, work)
    (work / 'tiny.yaml').write_text('hpo: {n_trials: 1, algorithms: [lightgbm], timeout_minutes: 30}\ncross_validation: {n_splits: 2}\nevaluation: {bootstrap: 0}\n')
    cmd = json.loads([v for k, v in stage if k == 'CMD'][0])
    env = {**os.environ, **env_of(stage), 'PATH': f"{venv / 'venv' / 'bin'}:{os.environ['PATH']}", 'NUM_PATIENTS': '1500',
           'TRAIN_CONFIG': 'tiny.yaml', 'MLFLOW_TRACKING_URI': f"sqlite:///{venv / 'mlflow.db'}"}
    r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return work / 'models' / 'default' / 'model', env


def test_training_entry_trains_and_registers(trained):
    model, env = trained
    assert (model / 'model.joblib').exists()
    import mlflow
    assert str(mlflow.MlflowClient(tracking_uri=env['MLFLOW_TRACKING_URI']).get_model_version_by_alias('clinical-ml', 'champion').version) == '1'


def test_serving_entry_answers_health(venv, trained):
    stage = final_stage(DOCKER / 'Dockerfile.serving')
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    cmd = [str(port) if c == '8000' else '127.0.0.1' if c == '0.0.0.0' else c for c in json.loads([v for k, v in stage if k == 'CMD'][0])]
    env = {**os.environ, **env_of(stage), 'PATH': f"{venv / 'venv' / 'bin'}:{os.environ['PATH']}", 'MODEL_URI': 'models:/clinical-ml@champion',
           'MLFLOW_TRACKING_URI': trained[1]['MLFLOW_TRACKING_URI'], 'RELOAD_FILE': str(venv / 'reload.json')}
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f'http://127.0.0.1:{port}/health', timeout=2).status_code == 200: break
            except httpx.HTTPError: pass
            time.sleep(0.5)
        h = httpx.get(f'http://127.0.0.1:{port}/health').json()
        assert h['status'] == 'healthy' and h['model_version'] == '1'
        check = [v for k, v in stage if k == 'HEALTHCHECK'][0]
        probe = json.loads(check[check.index('CMD') + 3:].strip().replace('8000', str(port)))
        assert subprocess.run(probe, env=env, timeout=30).returncode == 0
    finally:
        p.terminate()
        try: p.wait(20)
        except subprocess.TimeoutExpired: p.kill()
