"Packaging for clinical-ml: edit settings.ini, not here (nbdev 2 style)."
from configparser import ConfigParser
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o:cfg[o] for o in cfg_keys}

licenses = {'apache2': ('Apache Software License 2.0','OSI Approved :: Apache Software License')}
statuses = ['1 - Planning','2 - Pre-Alpha','3 - Alpha','4 - Beta','5 - Production/Stable','6 - Mature','7 - Inactive']
lic = licenses.get(cfg['license'].lower(), (cfg['license'], None))
min_python = cfg['min_python']
requirements = shlex.split(cfg.get('requirements', ''))
extras = {role: shlex.split(cfg.get(f'{role}_requirements', '')) for role in ('serve', 'train', 'events', 'dev')}
extras['all'] = extras['serve'] + extras['train']
extras['dev'] = extras['all'] + extras['events'] + extras['dev']  # `make test`: everything
lib_path = cfg.get('lib_path')

setuptools.setup(
    name = cfg['lib_name'],
    license = lic[0],
    classifiers = ['Development Status :: ' + statuses[int(cfg['status'])],
                   'Intended Audience :: ' + cfg['audience'].title(),
                   'Natural Language :: ' + cfg['language'].title(),
                   'Programming Language :: Python :: ' + min_python] + (['License :: ' + lic[1]] if lic[1] else []),
    url = cfg['git_url'],
    packages = setuptools.find_packages(include=[lib_path, lib_path + '.*']),
    include_package_data = True,
    package_data = {lib_path: ['specs/*.yaml']},  # the data set specs the package ships (the synthetic record)
    install_requires = requirements,
    extras_require = extras,
    dependency_links = cfg.get('dep_links','').split(),
    python_requires = '>=' + cfg['min_python'],
    long_description = open('README.md', encoding='utf-8').read(),
    long_description_content_type = 'text/markdown',
    zip_safe = False,
    entry_points = {'console_scripts': cfg.get('console_scripts','').split(),
                    'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d']},
    **setup_cfg)
