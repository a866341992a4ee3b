#!/bin/sh
# Seeds corpus/parse_expand with every golden case's Dockerfile text.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/parse_expand
python3 - <<'PY'
import glob, os, re
for path in sorted(glob.glob('../tests/golden/*.txt')):
    base = os.path.basename(path)[:-4]
    for n, case in enumerate(re.split(r'^=== .*$', open(path).read(), flags=re.M)[1:]):
        body = case.split('--- expect')[0].strip('\n')
        body = '\n'.join(l for l in body.split('\n') if not l.startswith('args:'))
        body = body.replace('<TAB>', '\t').replace('<CR>', '\r')
        open(f'corpus/parse_expand/{base}_{n}', 'w').write(body + '\n')
PY
