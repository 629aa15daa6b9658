"""The docs site as a reader meets it: rendered by Quarto (`make docs`), every notebook a page in a sidebar of sections,
every exported name in its API reference and the search index, no broken internal link or anchor (the README's links
into the site included), the home, a stage and the API page drawn in Chromium; and the README's commands run as
written."""
import json, re, subprocess, sys, threading
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit
import pytest, yaml
from conftest import ROOT, BIN

SECTIONS = ['Get started', 'Data', 'Features', 'Training', 'Serving', 'Operations', 'Reference']
RESULTS = ROOT / 'benchmarks' / 'results'


@pytest.fixture(scope='module')
def site() -> Path:
    "The rendered site, `_docs/` (`make test` renders it before pytest; rendered here when missing or older than a notebook, a page, the site's config or a benchmark result)."
    docs = ROOT / '_docs'
    srcs = [*(ROOT / 'nbs').glob('*.ipynb'), *(ROOT / 'nbs').glob('*.qmd'), *(ROOT / 'nbs').glob('*.yml'), ROOT / 'settings.ini', *RESULTS.glob('*')]
    if not (docs / 'index.html').exists() or (docs / 'index.html').stat().st_mtime < max(p.stat().st_mtime for p in srcs):
        r = subprocess.run(['make', 'docs'], cwd=ROOT, capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return docs


def page_names() -> dict:
    "Each notebook's page: nbdev drops the number prefix (`02_features.ipynb` → `features.html`)."
    return {p.name: re.sub(r'^\d+[a-z]?_', '', p.stem) + '.html' for p in (ROOT / 'nbs').glob('*.ipynb')}


class Page(HTMLParser):
    "The ids a page defines and the links it makes."
    def __init__(self, text: str):
        super().__init__(); self.ids, self.links = set(), []
        self.feed(text)
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('name'): self.ids.add(a['name'])
        for k in ('href', 'src'):
            if a.get(k) and tag in ('a', 'link', 'script', 'img', 'iframe', 'source'): self.links.append(a[k])



def test_sidebar_is_in_sections_and_holds_every_notebook_and_page_once():
    side = yaml.safe_load((ROOT / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    assert [x['section'] for x in side] == SECTIONS
    listed = [n for x in side for n in x['contents']]
    assert sorted(listed) == sorted(p.name for p in (ROOT / 'nbs').glob('*') if p.suffix in ('.ipynb', '.qmd')), listed  # each exactly once
    assert side[0]['contents'] == ['index.ipynb', 'get_started.qmd']


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


def test_every_notebook_is_a_page_with_its_api_reference(site):
    assert {p.name for p in site.glob('*.html')} >= set(page_names().values())
    proc, notebook = ROOT / '_proc', {page: nb for nb, page in page_names().items()}  # _proc: the notebooks as nbdev processed them for Quarto
    names = exported_names()
    for name, page in names.items():
        cells = json.loads((proc / notebook[page]).read_text())['cells']
        assert any(f'show_doc({name})' in ''.join(c['source']) for c in cells), (page, name)
    assert len(names) > 50


def exported_names() -> dict:
    "Every public name the library exports, with its page (methods are documented with their class)."
    from clinical_ml import _modidx
    return {sym[len(mod) + 1:]: doc.split('#')[0] for mod, syms in _modidx.d['syms'].items() for sym, (doc, _) in syms.items()
            if '.' not in sym[len(mod) + 1:] and not sym[len(mod) + 1:].startswith('_')}


def test_search_index_holds_every_exported_name(site):
    "Searching a name finds its own page (Quarto indexes a page by its sections: API entries outside any section are not found)."
    idx = json.loads((site / 'search.json').read_text())
    text = {}
    for e in idx: text[e['href'].split('#')[0]] = text.get(e['href'].split('#')[0], '') + f"\n{e.get('title', '')} {e.get('section', '')} {e.get('text', '')}"
    missing = sorted(f'{page}: {n}' for n, page in exported_names().items() if not re.search(rf'\b{re.escape(n)}\b', text.get(page, '')))
    assert not missing, missing
    assert set(text) >= set(page_names().values())  # every page is searchable


def test_no_broken_internal_link_or_anchor(site):
    "Every link between pages, to an asset or to an anchor resolves in `_docs/`; so do links to the published site (the README's among them)."
    from nbdev.config import get_config
    cfg = get_config(path=ROOT)
    published = cfg.doc_host.rstrip('/') + cfg.doc_baseurl.rstrip('/') + '/'
    pages = {p.resolve(): Page(p.read_text(errors='replace')) for p in site.rglob('*.html')}
    def target(base: Path, link: str):
        "The file and anchor a link points to in `_docs/`; None for a link off the site (not reachable offline)."
        u = urlsplit(link)
        if link.startswith(published): return site / (unquote(u.path[len(urlsplit(published).path):]) or 'index.html'), u.fragment
        if u.scheme or u.netloc: return None, None  # another site, mailto:, data:
        return ((base.parent / unquote(u.path)) if u.path else base), u.fragment
    def fault(base: Path, link: str):
        "What is wrong with a link: no such file, no such anchor, or nothing (None; also for a link off the site)."
        f, frag = target(base, link)
        if f is None: return None
        f = (f / 'index.html' if f.is_dir() else f).resolve()
        if not f.exists(): return 'no such file'
        if frag and f.suffix == '.html' and frag not in pages.get(f, Page('')).ids: return 'no such anchor'
    home = site / 'index.html'
    assert (fault(home, 'schema.html#no-such-anchor'), fault(home, 'no-such-page.html'), fault(home, 'schema.html')) == ('no such anchor', 'no such file', None)  # the checker can fail
    readme = re.findall(r'\]\((' + re.escape(published) + r'[^)\s]*)\)', (ROOT / 'README.md').read_text())
    links = [(p, l) for p, pg in pages.items() for l in pg.links if target(p, l)[0] is not None] + [(home, l) for l in readme]
    broken = [(p.name, l, why) for p, l in links if (why := fault(p, l))]
    print(f'{len(links)} internal links checked ({len(readme)} from the README)')
    assert len(links) > 500 and len(readme) > 10, (len(links), len(readme))
    assert not broken, broken[:30]


def test_pages_drawn_from_the_results_show_what_was_measured(site):
    "Get started, the example report and the benchmarks are drawn from benchmarks/results/ when the site renders: their figures are on the pages, none is written in the pages' sources, and the plots are drawn."
    gs, rep = json.loads((RESULTS / 'get_started.json').read_text()), json.loads((RESULTS / 'example_report.json').read_text())
    meds, faults = json.loads((RESULTS / 'meds_1m.json').read_text()), json.loads((RESULTS / 'faults.json').read_text())['scenarios']['overload']
    html = {n: (site / f'{n}.html').read_text() for n in ('get_started', 'example_report', 'benchmarks')}
    run = gs['steps'][0]
    assert run['command'] == 'make run' and run['returncode'] == 0 and all(s.get('returncode', 0) == 0 for s in gs['steps']), gs['steps']
    shown = {'get_started': [f"{gs['summary']['test']['roc_auc']:.4f}", run['output'][-1].strip().split(':')[0], '"probability": '],
             'example_report': [f"ROC-AUC {rep['overall']['roc_auc']:.3f}", f"{rep['worst_slice']['slice']} = {rep['worst_slice']['value']}"],
             'benchmarks': [f"{meds['ratio_seconds']:.1f}×", f"{faults['capacity_rps']:,.0f} req/s", f"{faults['shedding']['p99_ms']:,.0f} ms"]}
    for name, figures in shown.items():
        src = (ROOT / 'nbs' / f'{name}.qmd').read_text()
        for f in figures:
            assert f in html[name], (name, f)
            assert f not in src, (name, f, 'written in the source, not drawn from the results')
    from PIL import Image
    imgs = re.findall(r'<img src="([^"]+\.png)"', html['benchmarks'])
    assert len(imgs) >= 3, imgs
    for i in imgs:
        im = Image.open(site / unquote(i)).convert('L')
        assert len(im.getcolors(2**16) or range(2**16)) > 20, i  # a drawn plot, not a blank image


@pytest.fixture(scope='module')
def served(site):
    "The site over HTTP on 127.0.0.1 (Quarto's search reads search.json by fetch, which file:// forbids)."
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    srv = ThreadingHTTPServer(('127.0.0.1', 0), partial(Quiet, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}'
    srv.shutdown()


@pytest.mark.parametrize('page,title,expect', [
    ('index.html', 'clinical-ml', ['make run', '<svg']),  # the home page draws its data-flow diagram (Mermaid, in the browser)
    ('features.html', 'Temporal features', ['compute_features']),
    ('serve.html', 'Serving', ['create_app', '/predict']),
    ('benchmarks.html', 'Benchmarks', ['benchmarks_files/figure-html/', 'MEDS-Tab']),  # a page drawn from the results, with its plots
])
def test_pages_draw_in_chromium(served, chromium, tmp_path, page, title, expect):
    "What a reader needs on the home page, a stage page, the API page and the benchmarks: the title, the sidebar in sections, a figure (home, benchmarks) or rendered signatures; and a screenshot that is not blank."
    shot = tmp_path / page.replace('.html', '.png')
    dom, log = chromium(f'{served}/{page}', screenshot=shot)
    assert re.search(rf'<h1 class="title">{re.escape(title)}</h1>', dom), dom[:3000]
    assert 'id="quarto-sidebar"' in dom and all(f'>{s}<' in dom for s in SECTIONS), 'the sidebar in sections'
    for e in expect: assert e in dom, e
    if page == 'index.html': assert re.search(r'<svg[^>]*id="mermaid', dom) and 'features' in dom, 'the diagram drawn as SVG'
    elif page == 'benchmarks.html': assert len(re.findall(r'<img src="benchmarks_files/figure-html/[^"]+\.png"', dom)) >= 3, 'the plots'
    else:  # show_doc's heading (with the anchor link the page's script adds), then the signature as highlighted code
        sigs = re.findall(r'<h3 class="anchored" data-anchor-id="(\w+)">\1<a class="anchorjs-link[^>]*></a></h3>\s*<div class="sourceCode"[^>]*>'
                          r'<pre[^>]*><code[^>]*><span[^>]*><a[^>]*></a><span class="kw">(?:def|class)</span> \1\b', dom)
        assert len(sigs) >= 3, f'rendered show_doc signatures: {sigs}'
    from PIL import Image
    im = Image.open(shot).convert('L')
    assert im.size == (1280, 1600) and len(im.getcolors(2**16) or range(2**16)) > 50, 'the screenshot shows a drawn page'
    assert not [l for l in log.splitlines() if 'CONSOLE' in l and 'uncaught' in l.lower()], log[-2000:]


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
