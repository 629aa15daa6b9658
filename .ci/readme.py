"""Build README.md from nbs/index.ipynb without Quarto: nbdev's own notebook processing, then nbconvert to Markdown.

Usage: python .ci/readme.py          # write README.md
       python .ci/readme.py --check  # exit 1 if README.md is not what index.ipynb gives
"""
import re, sys
import nbformat, yaml
from pathlib import Path
from nbconvert import MarkdownExporter
from nbdev.config import get_config
from nbdev.serve import proc_nbs

def build() -> str:
    cfg = get_config()
    cache = proc_nbs(file_glob=cfg.readme_nb, n_workers=0)
    nb = nbformat.read(cache/cfg.readme_nb, as_version=4)
    for c in nb.cells:  # `#| echo: false` (Quarto hides the code): show only the output here too
        if c.cell_type == 'code' and c.source.lstrip().startswith('#| echo: false'): c.metadata["transient"] = {"remove_source": True}
    body, _ = MarkdownExporter().from_notebook_node(nb)
    front = re.match(r'^---\n(.*?)\n---\n', body, flags=re.S)  # Quarto front matter: title, description
    meta = yaml.safe_load(front.group(1)) if front else {}
    body = body[front.end():] if front else body
    head = f"# {meta.get('title', cfg.lib_name)}\n\n" + (f"> {meta['description']}\n\n" if 'description' in meta else '')
    body = body.replace('```{mermaid}', '```mermaid')  # Quarto draws `{mermaid}` blocks; GitHub draws `mermaid` ones
    return head + re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'

if __name__ == '__main__':
    new, path = build(), Path(get_config().config_path)/'README.md'
    if '--check' in sys.argv:
        if path.read_text() != new:
            sys.exit('README.md is not up to date with nbs/index.ipynb: run `make readme` and commit it')
        print('README.md is up to date')
    else:
        path.write_text(new)
        print(f'wrote {path}')
