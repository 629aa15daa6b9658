"""The Kubernetes manifests under deploy/ validate offline against the Kubernetes schemas (kubernetes-validate, strict),
and hang together: the kustomization lists every file, selectors match pod labels, probes and resources are set to the
thread policy, the autoscaler targets the API, the keys come from a Secret. No cluster runs here."""
import subprocess
from pathlib import Path
import pytest, yaml
from conftest import ROOT, BIN

DEPLOY = ROOT / 'deploy'
K8S_VERSION = '1.30.0'


def docs() -> dict:
    "Every resource by (kind, name)."
    out = {}
    for f in sorted(DEPLOY.glob('*.yaml')):
        if f.name == 'kustomization.yaml': continue
        for d in yaml.safe_load_all(f.read_text()):
            if d: out[d['kind'], d['metadata']['name']] = d
    return out


def validate(*files) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / 'kubernetes-validate'), '--strict', '-k', K8S_VERSION, *map(str, files)],
                          capture_output=True, text=True, timeout=300)


def test_manifests_validate_against_the_kubernetes_schemas():
    files = [f for f in sorted(DEPLOY.glob('*.yaml')) if f.name != 'kustomization.yaml']
    r = validate(*files)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count('passed') == len(docs())


def test_the_validator_rejects_a_broken_manifest(tmp_path):
    "The check above can fail: a misspelt field and a wrong type are refused."
    bad = (DEPLOY / 'serving.yaml').read_text().replace('readinessProbe:', 'readynessProbe:', 1)
    (tmp_path / 'bad.yaml').write_text(bad)
    assert validate(tmp_path / 'bad.yaml').returncode != 0
    (tmp_path / 'bad2.yaml').write_text((DEPLOY / 'serving.yaml').read_text().replace('replicas: 2', 'replicas: two', 1))
    assert validate(tmp_path / 'bad2.yaml').returncode != 0


def test_kustomization_lists_every_manifest_and_both_images():
    k = yaml.safe_load((DEPLOY / 'kustomization.yaml').read_text())
    assert sorted(k['resources']) == sorted(f.name for f in DEPLOY.glob('*.yaml') if f.name != 'kustomization.yaml')
    images = {d['spec']['template']['spec']['containers'][0]['image'] for d in docs().values() if d['kind'] in ('Deployment', 'Job')}
    assert images == {i['name'] for i in k['images']} == {'clinical-ml-training', 'clinical-ml-serving'}


def test_serving_is_probed_sized_to_one_thread_and_autoscaled():
    r = docs()
    dep = r['Deployment', 'clinical-ml-serving']
    pod = dep['spec']['template']
    assert dep['spec']['selector']['matchLabels'].items() <= pod['metadata']['labels'].items()
    assert r['Service', 'clinical-ml-serving']['spec']['selector'].items() <= pod['metadata']['labels'].items()
    c = pod['spec']['containers'][0]
    assert c['readinessProbe']['httpGet']['path'] == c['livenessProbe']['httpGet']['path'] == '/health'
    assert c['command'][c['command'].index('--workers') + 1] == '1'  # one process per pod …
    assert c['resources']['requests']['cpu'] == c['resources']['limits']['cpu'] == '1'  # … on one CPU
    assert {'name': 'OMP_NUM_THREADS', 'value': '1'} in c['env']
    for name, field in (('API_KEY', 'api-key'), ('ADMIN_KEY', 'admin-key'), ('LOG_SECRET', 'log-secret'), ('ROUTE_SECRET', 'route-secret')):
        key = [e for e in c['env'] if e['name'] == name][0]  # the root file system is read-only: every secret is given, none generated
        assert key['valueFrom']['secretKeyRef'] == {'name': r['Secret', 'clinical-ml-keys']['metadata']['name'], 'key': field}
        assert field in r['Secret', 'clinical-ml-keys']['stringData']
    assert pod['spec']['securityContext']['runAsNonRoot'] and pod['spec']['securityContext']['runAsUser'] != 0
    hpa = r['HorizontalPodAutoscaler', 'clinical-ml-serving']['spec']
    assert hpa['scaleTargetRef']['name'] == 'clinical-ml-serving' and hpa['minReplicas'] >= 2


def test_training_job_and_mlflow_reach_each_other():
    r = docs()
    cfg = r['ConfigMap', 'clinical-ml-config']['data']
    svc = r['Service', 'mlflow']['spec']
    assert cfg['MLFLOW_TRACKING_URI'] == f"http://mlflow:{svc['ports'][0]['port']}"
    assert svc['selector'].items() <= r['Deployment', 'mlflow']['spec']['template']['metadata']['labels'].items()
    job = r['Job', 'clinical-ml-training']['spec']['template']['spec']
    assert job['restartPolicy'] == 'Never' and job['securityContext']['runAsUser'] == 10001
    res = job['containers'][0]['resources']
    assert res['requests']['cpu'] == res['limits']['cpu']  # the pipeline sizes its threads to the CPU quota
