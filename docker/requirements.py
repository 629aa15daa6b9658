"""The requirements of one install role, read from settings.ini (where setup.py reads them): the images install these
first, in a layer of their own, so a change to the code does not reinstall the dependencies.
    python docker/requirements.py serve|train > requirements.txt"""
import configparser, shlex, sys

cfg = configparser.ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
role = sys.argv[1]
if role not in ('serve', 'train'): sys.exit(f'usage: requirements.py serve|train (got {role!r})')
print('\n'.join(shlex.split(cfg['DEFAULT']['requirements']) + shlex.split(cfg['DEFAULT'][f'{role}_requirements'])))
