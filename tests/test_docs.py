"""The docs site short of Quarto's render (not installable here): nbdev processes every notebook, the sidebar lists every
notebook in data-flow order, every exported function has its API reference, and the README's commands run as written."""
import re, subprocess, sys
from pathlib import Path
import yaml
from conftest import ROOT, BIN



def test_every_notebook_is_in_the_sidebar_in_data_flow_order():
    side = yaml.safe_load((ROOT / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    nbs = sorted(p.name for p in (ROOT / 'nbs').glob('*.ipynb'))
    assert sorted(side) == nbs
    assert side == ['index.ipynb'] + sorted(n for n in nbs if n != 'index.ipynb')  # 00_schema … 08_pipeline: the data flow


def test_notebooks_open_as_documents():
    "Opened in JupyterLab, every notebook shows its title and purpose first, before any code."
    import json
    for p in sorted((ROOT / 'nbs').glob('[0-9]*.ipynb')):
        cells = json.loads(p.read_text())['cells']
        assert cells[0]['cell_type'] == 'markdown' and ''.join(cells[0]['source']).startswith('# '), p.name
        assert cells[1]['cell_type'] == 'markdown', p.name  # the purpose, before the imports and the parameters


def test_no_mlflow_store_inside_the_notebooks():
    "Running the notebooks (make test runs them before pytest) leaves no MLflow store or artifacts in nbs/."
    assert not [p.name for p in (ROOT / 'nbs').iterdir() if p.name in ('mlruns', 'mlartifacts', 'mlflow.db')]


def test_proc_nbs_gives_every_page_with_the_api_reference():
    r = subprocess.run([str(BIN / 'python'), '-c', 'from nbdev.serve import proc_nbs; print(proc_nbs(force=True))'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    proc = Path(r.stdout.strip().splitlines()[-1])
    assert {p.name for p in proc.glob('*.ipynb')} >= {p.name for p in (ROOT / 'nbs').glob('*.ipynb')}
    import json
    from clinical_ml import _modidx
    page_of = {re.sub(r'^\d+[a-z]?_', '', p.stem): p.name for p in (ROOT / 'nbs').glob('*.ipynb')}
    checked = 0
    for mod, syms in _modidx.d['syms'].items():
        for sym, (doc, _) in syms.items():
            name = sym[len(mod) + 1:]
            if '.' in name or name.startswith('_'): continue  # methods are documented with their class
            page = json.loads((proc / page_of[doc.split('#')[0].removesuffix('.html')]).read_text())
            assert any(f'show_doc({name})' in ''.join(c['source']) for c in page['cells']), (mod, name)
            checked += 1
    assert checked > 50


def runnable_blocks(readme: str) -> list[str]:
    "The shell blocks the README marks `<!-- runnable -->`."
    return re.findall(r'<!-- runnable -->\s*```bash\n(.*?)```', readme, flags=re.S)


def test_readme_commands_run_as_written(tmp_path):
    blocks = runnable_blocks((ROOT / 'README.md').read_text())
    assert len(blocks) >= 4
    env = {'PATH': f"{BIN}:/usr/bin:/bin", 'HOME': str(tmp_path)}
    subprocess.run(['rm', '-rf', '/tmp/readme-demo'], timeout=900)
    for b in blocks:
        r = subprocess.run(['bash', '-euo', 'pipefail', '-c', b], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, (b, r.stdout[-2000:], r.stderr[-3000:])
    assert '"probability"' in r.stdout and '"error"' in r.stdout  # the curl block: a prediction, and a per-item batch error


def test_github_workflows_are_the_nbdev_pair_and_validate(tmp_path):
    "Tests on push and the site to GitHub Pages (nbdev's conventional pair), valid against GitHub's workflow schema (check-jsonschema's vendored copy: offline); the site's address is where GitHub Pages serves this repository."
    wf = sorted((ROOT / '.github' / 'workflows').glob('*.yaml'))
    assert [p.name for p in wf] == ['deploy.yaml', 'test.yaml']
    check = lambda *files: subprocess.run([str(BIN / 'check-jsonschema'), '--builtin-schema', 'vendor.github-workflows', *map(str, files)],
                                          capture_output=True, text=True, timeout=120)
    r = check(*wf)
    assert r.returncode == 0, r.stdout + r.stderr
    uses = {p.name: [s['uses'] for j in yaml.safe_load(p.read_text())['jobs'].values() for s in j['steps']] for p in wf}
    assert uses == {'deploy.yaml': ['fastai/workflows/quarto-ghp@master'], 'test.yaml': ['fastai/workflows/nbdev-ci@master']}
    (tmp_path / 'bad.yaml').write_text((ROOT / '.github' / 'workflows' / 'test.yaml').read_text().replace('steps:', 'stepz:'))
    r = check(tmp_path / 'bad.yaml')
    assert r.returncode == 1 and 'stepz' in r.stdout, r.stdout  # the check can fail
    from nbdev.config import get_config
    cfg = get_config(path=ROOT)
    owner, repo = cfg.git_url.rstrip('/').split('/')[-2:]
    assert (cfg.doc_host, cfg.doc_baseurl) == (f'https://{owner}.github.io', f'/{repo}')  # GitHub Pages of git_url: the README's links resolve there
